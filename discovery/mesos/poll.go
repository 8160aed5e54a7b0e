package mesos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/lodestar-lb/lodestar/discovery"
)

// statePaths are where masters serve their state, newest first: Mesos 1.x serves all of them,
// 0.2x the .json ones, the oldest releases only /state.json. A 404 moves to the next.
var statePaths = []string{"/master/state", "/master/state.json", "/state.json"}

// answer is what one master said.
type answer struct {
	// state is set only when the master leads: the state of one that does not lead names the
	// leader and has no frameworks or agents.
	state *discovery.MesosState
	// leader is the "host:port" a master that does not lead names (from its state or a
	// redirect), or "".
	leader string
}

// fetchLeader asks candidates in order until one answers as the leader, and returns that
// master's own state. A master that does not lead names the leader, which is asked next; the
// state of a master that does not lead is never returned (it has no frameworks or agents: sent
// as the cluster's state, it would empty DNS). Every master is asked at most once. When the
// leader a master names does not answer, the error names both.
func (s *Source) fetchLeader(ctx context.Context, candidates []string) (*discovery.MesosState, string, error) {
	if len(candidates) == 0 {
		return nil, "", errors.New("no Mesos master known yet: ZooKeeper has named none and no --mesos-master is set")
	}
	queue := slices.Clone(candidates)
	asked := map[string]bool{}
	namedBy := map[string]string{} // a leader asked because a master named it → that master
	var errs []error
	for i := 0; i < len(queue); i++ {
		addr := queue[i]
		if asked[addr] {
			continue
		}
		asked[addr] = true
		a, err := s.fetch(ctx, addr)
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		if err != nil {
			if by := namedBy[addr]; by != "" {
				err = fmt.Errorf("master %s does not lead and names %s, which did not answer: %w", by, addr, err)
			}
			errs = append(errs, err)
			continue
		}
		if a.state != nil {
			return a.state, addr, nil
		}
		switch {
		case a.leader == "":
			errs = append(errs, fmt.Errorf("master %s does not lead and names no leader", addr))
		case asked[a.leader]:
			// Already asked in this poll: its failure is in errs.
			errs = append(errs, fmt.Errorf("master %s does not lead and names %s, which did not answer as leader either", addr, a.leader))
		default:
			s.log.Debug("Mesos master does not lead; asking the leader it names", "master", addr, "leader", a.leader)
			namedBy[a.leader] = addr
			queue = slices.Insert(queue, i+1, a.leader)
		}
	}
	return nil, "", fmt.Errorf("no Mesos master answered as leader: %w", errors.Join(errs...))
}

// fetch asks one master for its state, on the newest path it serves.
func (s *Source) fetch(ctx context.Context, addr string) (answer, error) {
	first := s.paths[addr]
	for i := first; i < len(statePaths); i++ {
		a, status, err := s.get(ctx, addr, statePaths[i])
		if status == http.StatusNotFound {
			continue
		}
		if err == nil {
			s.paths[addr] = i
		}
		return a, err
	}
	// The path that answered before may have gone (a downgrade): start over next time.
	delete(s.paths, addr)
	return answer{}, fmt.Errorf("master %s: no state on %s (404 on each)", addr, strings.Join(statePaths[first:], ", "))
}

// get does one request. status is the HTTP status, 0 when there was no response.
func (s *Source) get(ctx context.Context, addr, path string) (answer, int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	u := s.scheme + "://" + addr + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return answer{}, 0, fmt.Errorf("master %s: %w", addr, err)
	}
	req.Header.Set("Accept", "application/json")
	if s.cfg.Username != "" {
		req.SetBasicAuth(s.cfg.Username, s.cfg.Password)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return answer{}, 0, fmt.Errorf("master %s: %w", addr, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return answer{}, resp.StatusCode, nil
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		// Mesos 1.x: a master that does not lead redirects to the leader ("//host:port/…").
		loc, err := req.URL.Parse(resp.Header.Get("Location"))
		if err != nil || loc.Host == "" || loc.Host == addr {
			return answer{}, resp.StatusCode, fmt.Errorf("master %s%s: redirect to %q leads nowhere", addr, path, resp.Header.Get("Location"))
		}
		return answer{leader: loc.Host}, resp.StatusCode, nil
	case http.StatusUnauthorized, http.StatusForbidden:
		return answer{}, resp.StatusCode, fmt.Errorf("master %s%s: %s: check --mesos-auth", addr, path, resp.Status)
	default:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return answer{}, resp.StatusCode, fmt.Errorf("master %s%s: %s: %s", addr, path, resp.Status, strings.TrimSpace(string(body)))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.cfg.MaxBody+1))
	if err != nil {
		return answer{}, resp.StatusCode, fmt.Errorf("master %s%s: reading the state: %w", addr, path, err)
	}
	if int64(len(body)) > s.cfg.MaxBody {
		return answer{}, resp.StatusCode, fmt.Errorf("master %s%s: state larger than %d bytes (raise the limit)", addr, path, s.cfg.MaxBody)
	}
	st, err := discovery.DecodeMesosState(body)
	if err != nil {
		return answer{}, resp.StatusCode, fmt.Errorf("master %s%s: %w", addr, path, err)
	}
	if st.LeaderPID == "" {
		return answer{}, resp.StatusCode, fmt.Errorf("master %s: no leader elected", addr)
	}
	if st.Leader == addr || s.leads(addr, body, st) {
		return answer{state: st}, resp.StatusCode, nil
	}
	return answer{leader: st.Leader}, resp.StatusCode, nil
}

// leads reports whether the master asked at addr, which sent body, is the leader: whether its
// own "pid" is the state's leader pid. It is needed only when addr is not the address in the
// leader's pid (a host name, say). Reading the pid means a second decode of the whole
// document, so the pid of each address is remembered, but trusted only for a state with
// frameworks or agents: the address may be a name or VIP that reaches another master on the
// next request, and a master that does not lead has neither (and a small state, decoded again
// at little cost).
func (s *Source) leads(addr string, body []byte, st *discovery.MesosState) bool {
	if s.pids[addr] == st.LeaderPID && (len(st.Frameworks) > 0 || len(st.Agents) > 0) {
		return true
	}
	var w struct {
		PID string `json:"pid"`
	}
	if json.Unmarshal(body, &w) != nil {
		return false
	}
	s.pids[addr] = w.PID
	return w.PID == st.LeaderPID
}
