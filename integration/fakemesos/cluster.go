package fakemesos

import (
	"errors"
)

// Cluster is a set of started fake masters that agree on one leader.
type Cluster struct {
	Masters []*Master
}

// NewCluster starts n masters on 127.0.0.1, all claiming that Masters[0] leads.
func NewCluster(n int) (*Cluster, error) {
	c := &Cluster{}
	for range n {
		m := New()
		if err := m.Start(); err != nil {
			c.Close()
			return nil, err
		}
		c.Masters = append(c.Masters, m)
	}
	c.SetLeader(0)
	return c, nil
}

// SetLeader makes every master claim that Masters[i] leads; i < 0 means no leader elected.
func (c *Cluster) SetLeader(i int) {
	leader := ""
	if i >= 0 {
		leader = c.Masters[i].HostPort()
	}
	for _, m := range c.Masters {
		m.SetLeader(leader)
	}
}

// SetState sets the state document of every master.
func (c *Cluster) SetState(raw []byte) error {
	var errs []error
	for _, m := range c.Masters {
		errs = append(errs, m.SetState(raw))
	}
	return errors.Join(errs...)
}

// EditState edits the state document of every master.
func (c *Cluster) EditState(edit func(state map[string]any)) {
	for _, m := range c.Masters {
		m.EditState(edit)
	}
}

// Addrs are the masters' "127.0.0.1:port" addresses, in order.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Masters))
	for i, m := range c.Masters {
		out[i] = m.HostPort()
	}
	return out
}

// Close stops every master.
func (c *Cluster) Close() {
	for _, m := range c.Masters {
		m.Close()
	}
}
