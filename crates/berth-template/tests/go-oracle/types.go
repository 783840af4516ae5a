// Go types the oracle decodes typed test data into. The Rust tests read
// this same file as a berth_template::schema::Schema, so both sides see
// the same declarations; methods are written again in the Rust test.
package main

import "strings"

type T struct {
	S      string
	I      int
	I64    int64
	U      uint64
	F      float64
	B      bool
	Empty  string
	Zero   int
	SS     []string
	NilSS  []string
	MSS    map[string]string
	NilM   map[string]string
	MI     map[string]int
	Any    interface{}
	NilAny interface{}
	Inner  Inner
	PInner *Inner
	NilP   *Inner
	Items  []Inner
	Port   Port
	Ports  map[Port][]Binding
	ID     string `json:"Id"`
	Hidden string `json:"-"`
	Omit   string `json:",omitempty"`
	Tagged string `json:"tagged_name"`
	State  *State
	Set    map[string]struct{}
}

type Inner struct {
	Name string
	Val  int
	Tags []string
}

type Port string

type Binding struct {
	HostIP   string
	HostPort string
}

type State struct {
	Status     string
	Running    bool
	Paused     bool
	Restarting bool
	OOMKilled  bool
	Dead       bool
	Pid        int
	ExitCode   int
	Error      string
	StartedAt  string
	FinishedAt string
	Health     *Health `json:",omitempty"`
}

type Health struct {
	Status        string
	FailingStreak int
}

// Label is a method with an argument, like Docker's ContainerContext.Label.
func (t T) Label(name string) string { return t.MSS[name] }

// Upper is a method without arguments.
func (t T) Upper() string { return strings.ToUpper(t.S) }

// Row stands for Docker's formatter contexts: every field is a method.
type Row struct {
	V map[string]string
}

func (r *Row) ID() string     { return r.V["ID"] }
func (r *Row) Names() string  { return r.V["Names"] }
func (r *Row) Labels() string { return r.V["Labels"] }
func (r *Row) Label(name string) string {
	for _, kv := range strings.Split(r.V["Labels"], ",") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}
