// The oracle: renders every test case with Go's own text/template and the
// functions Docker's CLI adds, and writes the results as the golden file the
// Rust tests compare with. Run: go run . ../cases.json ../datasets.json > ../golden.json
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/template"
)

// dockerFuncs has the semantics of docker/cli templates.basicFunctions.
var dockerFuncs = template.FuncMap{
	"json": func(v any) string {
		buf := &bytes.Buffer{}
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(v)
		return strings.TrimSpace(buf.String())
	},
	"split": strings.Split,
	"join":  strings.Join,
	"title": strings.Title, //nolint:staticcheck // Docker uses it
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"pad": func(s string, prefix, suffix int) string {
		if s == "" {
			return s
		}
		return strings.Repeat(" ", prefix) + s + strings.Repeat(" ", suffix)
	},
	"truncate": func(s string, n int) string {
		if len(s) < n {
			return s
		}
		return s[:n]
	},
}

type dataset struct {
	Type string          `json:"type"` // "raw", "T", "*T", "*Row", "State"
	JSON json.RawMessage `json:"json"`
}

// tcase is one line of cases.json: [dataset, template] or [dataset, template, option].
type tcase struct {
	D, T, Opt string
}

type result struct {
	D   string `json:"d"`
	T   string `json:"t"`
	Opt string `json:"opt,omitempty"`
	Out string `json:"out"`
	Err string `json:"err,omitempty"`
}

func load(ds dataset) any {
	switch ds.Type {
	case "raw":
		var v any
		dec := json.NewDecoder(bytes.NewReader(ds.JSON))
		dec.UseNumber()
		must(dec.Decode(&v))
		return v
	case "T":
		var v T
		must(json.Unmarshal(ds.JSON, &v))
		return v
	case "*T":
		var v T
		must(json.Unmarshal(ds.JSON, &v))
		return &v
	case "*State":
		var v State
		must(json.Unmarshal(ds.JSON, &v))
		return &v
	case "*Row":
		var v Row
		must(json.Unmarshal(ds.JSON, &v.V))
		return &v
	}
	panic("unknown dataset type " + ds.Type)
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func main() {
	var rows [][]string
	var sets map[string]dataset
	b, err := os.ReadFile(os.Args[1])
	must(err)
	must(json.Unmarshal(b, &rows))
	var cases []tcase
	for _, r := range rows {
		c := tcase{D: r[0], T: r[1]}
		if len(r) > 2 {
			c.Opt = r[2]
		}
		cases = append(cases, c)
	}
	b, err = os.ReadFile(os.Args[2])
	must(err)
	must(json.Unmarshal(b, &sets))
	var out []result
	for _, c := range cases {
		r := result{D: c.D, T: c.T, Opt: c.Opt}
		tmpl, err := template.New("").Funcs(dockerFuncs).Parse(c.T)
		if err != nil {
			r.Err = err.Error()
			out = append(out, r)
			continue
		}
		if c.Opt != "" {
			tmpl = tmpl.Option(c.Opt)
		}
		ds, ok := sets[c.D]
		if !ok {
			panic(fmt.Sprintf("no dataset %q", c.D))
		}
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, load(ds)); err != nil {
			r.Err = err.Error()
		}
		r.Out = buf.String()
		out = append(out, r)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	must(enc.Encode(out))
}
