package discovery

import "time"

// Snapshot is one immutable, versioned state of the registry. Consumers read it without locks;
// nothing reachable from a published Snapshot is ever modified. Apps that did not change
// between two snapshots are the same pointers, so a consumer may skip them by pointer equality.
type Snapshot struct {
	// Version increases by one with every change; equal snapshots are never published twice.
	Version uint64
	// Time is when this version was made.
	Time time.Time
	Apps AppSet
	// Mesos is the latest Mesos master state, nil until one has been read.
	Mesos *MesosState
	// Marathon is what is known of Marathon itself (its leader), nil until a Marathon source
	// has said.
	Marathon *MarathonState
	// Rules are bamboo-style routing rules by app id.
	Rules map[string]ServiceRule
	// Tasks counts the tasks of every app.
	Tasks int
}

// App returns the app with the given id (leading slash included), or nil.
func (s *Snapshot) App(id string) *App { return s.Apps.Get(id) }
