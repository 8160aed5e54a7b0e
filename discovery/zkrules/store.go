package zkrules

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/lodestar-lb/lodestar/discovery"
)

// putAttempts bounds Put's read-modify-write loop against concurrent writers of one rule.
const putAttempts = 5

// do runs f on the shared connection (opening it if needed) and returns its error. While
// ZooKeeper cannot be reached (or the connection drops under f), f is tried again until
// Config.ConnectWait has passed or ctx ends; retried is true on every try after the first.
// go-zookeeper calls take no context: when ctx ends first, do returns at once and the call
// in flight finishes in the background.
func (s *Source) do(ctx context.Context, f func(conn *zk.Conn, retried bool) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	stop := make(chan struct{})
	defer close(stop)
	done := make(chan error, 1)
	go func() {
		deadline := time.Now().Add(s.connectWait)
		for attempt := 0; ; attempt++ {
			conn, err := s.sess.ready(ctx)
			if err == nil {
				err = f(conn, attempt > 0)
			}
			if !transient(err) || time.Now().After(deadline) {
				done <- err
				return
			}
			t := time.NewTimer(min(50*time.Millisecond<<attempt, time.Second))
			select {
			case <-stop:
				t.Stop()
				return
			case <-t.C:
			}
		}
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// transient tells the errors of a connection that is down or was lost: worth another try.
func transient(err error) bool {
	return errors.Is(err, zk.ErrNoServer) || errors.Is(err, zk.ErrConnectionClosed) ||
		errors.Is(err, zk.ErrSessionExpired) || errors.Is(err, zk.ErrSessionMoved)
}

// List reads every rule from ZooKeeper, sorted by app id. Nodes that hold no usable rule are
// left out (Run logs them).
func (s *Source) List(ctx context.Context) ([]discovery.ServiceRule, error) {
	path := s.target.path
	read := map[string]discovery.ServiceRule{} // node name → rule
	err := s.do(ctx, func(conn *zk.Conn, _ bool) error {
		clear(read)
		children, _, err := conn.Children(path)
		if errors.Is(err, zk.ErrNoNode) {
			return nil // no rule was ever written
		}
		if err != nil {
			return err
		}
		for _, name := range children {
			data, _, err := conn.Get(path + "/" + name)
			if errors.Is(err, zk.ErrNoNode) || errors.Is(err, zk.ErrNoAuth) {
				continue // deleted since the listing, or no rule lodestar may read (Run logs it)
			}
			if err != nil {
				return fmt.Errorf("reading %s/%s: %w", path, name, err)
			}
			if r, err := decodeRule(name, data); err == nil {
				read[name] = r
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("zkrules: listing the rules in ZooKeeper %s: %w", s.target.where(), err)
	}
	names := make([]string, 0, len(read))
	for name := range read {
		names = append(names, name)
	}
	return byAppID(names, func(name string) discovery.ServiceRule { return read[name] }), nil
}

// Put creates or replaces the rule of rule.AppID, stored at <path>/<url.QueryEscape(AppID)>
// in bamboo's version 2 form (other config keys a bamboo node holds are kept). The path is
// created if it is missing. A bad rule is a *ValidationError and nothing is written.
func (s *Source) Put(ctx context.Context, rule discovery.ServiceRule) error {
	rule, err := normalize(rule)
	if err != nil {
		writes.WithLabelValues("put", "invalid").Inc()
		return fmt.Errorf("zkrules: %w", err)
	}
	p := s.target.path + "/" + nodeName(rule.AppID)
	err = s.do(ctx, func(conn *zk.Conn, _ bool) error {
		for range putAttempts {
			old, stat, err := conn.Get(p)
			if errors.Is(err, zk.ErrNoNode) {
				if err := ensurePath(conn, s.target.path); err != nil {
					return err
				}
				_, err = conn.Create(p, encodeRule(rule.ACL, nil), 0, zk.WorldACL(zk.PermAll))
				if errors.Is(err, zk.ErrNodeExists) {
					continue // created by another writer meanwhile: set it instead
				}
				return err
			}
			if err != nil {
				return err
			}
			_, err = conn.Set(p, encodeRule(rule.ACL, old), stat.Version)
			if errors.Is(err, zk.ErrBadVersion) || errors.Is(err, zk.ErrNoNode) {
				continue // changed or deleted by another writer meanwhile: read it again
			}
			return err
		}
		return fmt.Errorf("%s kept changing under %d attempts", p, putAttempts)
	})
	if err != nil {
		writes.WithLabelValues("put", "error").Inc()
		return fmt.Errorf("zkrules: writing the rule of %s to ZooKeeper %s: %w", rule.AppID, s.target.where(), err)
	}
	writes.WithLabelValues("put", "ok").Inc()
	return nil
}

// Delete removes the rule of appID. An app without a rule is an error matching ErrNoRule; a
// malformed app id is a *ValidationError.
func (s *Source) Delete(ctx context.Context, appID string) error {
	if err := checkAppID(appID); err != nil {
		writes.WithLabelValues("delete", "invalid").Inc()
		return fmt.Errorf("zkrules: %w", err)
	}
	p := s.target.path + "/" + nodeName(appID)
	err := s.do(ctx, func(conn *zk.Conn, retried bool) error {
		err := conn.Delete(p, -1)
		if retried && errors.Is(err, zk.ErrNoNode) {
			// The try cut off by a lost connection may have deleted it.
			return nil
		}
		return err
	})
	switch {
	case errors.Is(err, zk.ErrNoNode):
		writes.WithLabelValues("delete", "absent").Inc()
		return fmt.Errorf("zkrules: app %s (node %s): %w", appID, p, ErrNoRule)
	case err != nil:
		writes.WithLabelValues("delete", "error").Inc()
		return fmt.Errorf("zkrules: deleting the rule of %s from ZooKeeper %s: %w", appID, s.target.where(), err)
	}
	writes.WithLabelValues("delete", "ok").Inc()
	return nil
}
