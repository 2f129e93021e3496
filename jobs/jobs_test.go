// Package jobs holds the Nomad job specs an operator runs; this test keeps
// them, and the example jobs, parseable and able to start on a fresh
// cluster.
package jobs

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/template/parse"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// blocking lists the template functions that hold a task in pending while
// the data they read does not exist: Nomad renders every template before
// it starts the task, and consul-template does not render a template with
// a dependency it marked missing.
//
//   - key: a Consul key that does not exist blocks until it does
//     (consul-template's key enables blocking); keyOrDefault and keyExists
//     do not.
//   - nomadVar: a Nomad variable that does not exist blocks ("Missing:
//     nomad.var.block(…)"); nomadVarList and nomadVarExists do not. Called
//     on a path taken from nomadVarList, or under `if nomadVarExists` of
//     the same literal path, it reads a variable that exists, and passes.
//   - secret, secrets, pkiCert: Vault; a missing path fails and is retried
//     until it exists.
//   - safeLs, safeTree, nomadVarListSafe: an empty prefix is refused on
//     purpose, until something is stored there.
//
// service, nomadService, ls, tree and nomadVarList render an empty list when
// nothing is there, and keyOrDefault its default: those start.
var blocking = map[string]string{
	"key":              `use keyOrDefault, or guard with keyExists`,
	"nomadVar":         `range over nomadVarList and read nomadVar .Path, or guard with nomadVarExists`,
	"secret":           `Vault secrets block until the path exists`,
	"secrets":          `Vault secrets block until the path exists`,
	"pkiCert":          `Vault certificates block until issued`,
	"safeLs":           `use ls, which renders an empty prefix`,
	"safeTree":         `use tree, which renders an empty prefix`,
	"nomadVarListSafe": `use nomadVarList, which renders an empty prefix`,
}

// jobFiles are every .nomad.hcl file under jobs/ and examples/.
func jobFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, root := range []string{".", "../examples"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(path, ".nomad.hcl") {
				files = append(files, path)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(files) < 3 {
		t.Fatalf("found only %v: the test is looking in the wrong place", files)
	}
	return files
}

// TestJobsParseAndStartWithoutData parses every job file with HCL's native
// syntax (what `nomad job run` parses first) and every template in it with
// Go's template parser, and fails on a template that would keep its task
// pending on a cluster where the data it reads does not exist yet.
func TestJobsParseAndStartWithoutData(t *testing.T) {
	for _, path := range jobFiles(t) {
		t.Run(path, func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
			if diags.HasErrors() {
				t.Fatalf("HCL: %s", diags.Error())
			}
			n := 0
			for _, tmpl := range templates(f.Body.(*hclsyntax.Body)) {
				n++
				problems, err := checkTemplate(tmpl)
				if err != nil {
					t.Errorf("%s: %v", tmpl.where, err)
				}
				for _, p := range problems {
					t.Errorf("%s: %s", tmpl.where, p)
				}
			}
			t.Logf("%d templates", n)
		})
	}
}

// jobTemplate is one template block's text and delimiters.
type jobTemplate struct {
	where       string
	data        string
	left, right string
	// inline is false for a template read from a source file, which this
	// test cannot see.
	inline bool
	// err is why the block could not be read.
	err error
}

// templates finds every template block in body, at any depth.
func templates(body *hclsyntax.Body) []jobTemplate {
	var out []jobTemplate
	for _, b := range body.Blocks {
		if b.Type != "template" {
			out = append(out, templates(b.Body)...)
			continue
		}
		jt := jobTemplate{where: b.DefRange().String(), left: "{{", right: "}}"}
		for name, attr := range b.Body.Attributes {
			if name != "data" && name != "left_delimiter" && name != "right_delimiter" {
				continue
			}
			v, diags := attr.Expr.Value(nil)
			if diags.HasErrors() {
				// An HCL interpolation or function in the text: what Nomad
				// renders is not in the file, so it cannot be checked here.
				jt.err = fmt.Errorf("%s is not a literal this test can check: %s", name, diags.Error())
				continue
			}
			switch name {
			case "data":
				jt.data, jt.inline = v.AsString(), true
			case "left_delimiter":
				jt.left = v.AsString()
			case "right_delimiter":
				jt.right = v.AsString()
			}
		}
		out = append(out, jt)
	}
	return out
}

// checkTemplate parses a template's text and names every call that blocks
// on missing data.
func checkTemplate(jt jobTemplate) ([]string, error) {
	if jt.err != nil {
		return nil, jt.err
	}
	if !jt.inline {
		return nil, nil
	}
	tr := parse.New("template")
	tr.Mode = parse.SkipFuncCheck
	trees := map[string]*parse.Tree{}
	if _, err := tr.Parse(jt.data, jt.left, jt.right, trees); err != nil {
		return nil, fmt.Errorf("template does not parse: %w", err)
	}
	var problems []string
	for _, name := range slices.Sorted(maps.Keys(trees)) {
		walk(trees[name].Root, nil, &problems)
	}
	return problems, nil
}

// walk visits a template's nodes; guarded holds the literal paths an
// enclosing `if nomadVarExists` has checked.
func walk(node parse.Node, guarded []string, problems *[]string) {
	switch n := node.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			walk(c, guarded, problems)
		}
	case *parse.ActionNode:
		walk(n.Pipe, guarded, problems)
	case *parse.TemplateNode:
		walk(n.Pipe, guarded, problems)
	case *parse.IfNode:
		// Only the branch taken when the variable exists is guarded.
		walkBranch(&n.BranchNode, append(slices.Clip(guarded), existsGuards(n.Pipe)...), guarded, problems)
	case *parse.RangeNode:
		walkBranch(&n.BranchNode, guarded, guarded, problems)
	case *parse.WithNode:
		walkBranch(&n.BranchNode, guarded, guarded, problems)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			walk(c, guarded, problems)
		}
	case *parse.ChainNode:
		walk(n.Node, guarded, problems)
	case *parse.CommandNode:
		if fn, ok := n.Args[0].(*parse.IdentifierNode); ok {
			if p := blockingCall(fn.Ident, n.Args[1:], guarded); p != "" {
				*problems = append(*problems, fmt.Sprintf("%q blocks until its data exists: %s", n.String(), p))
			}
		}
		for _, a := range n.Args {
			walk(a, guarded, problems)
		}
	}
}

// walkBranch visits an if, range or with: its pipeline and else branch with
// guarded, its main branch with inside.
func walkBranch(b *parse.BranchNode, inside, guarded []string, problems *[]string) {
	walk(b.Pipe, guarded, problems)
	walk(b.List, inside, problems)
	walk(b.ElseList, guarded, problems)
}

// blockingCall says why a call of fn with args blocks, "" when it does not.
func blockingCall(fn string, args []parse.Node, guarded []string) string {
	why, ok := blocking[fn]
	if !ok {
		return ""
	}
	if fn == "nomadVar" && len(args) == 1 {
		lit, isLit := args[0].(*parse.StringNode)
		if !isLit || slices.Contains(guarded, lit.Text) {
			return ""
		}
	}
	return why
}

// existsGuards are the literal paths a pipeline checks with nomadVarExists.
func existsGuards(p *parse.PipeNode) []string {
	var out []string
	for _, c := range p.Cmds {
		if len(c.Args) == 2 {
			fn, ok1 := c.Args[0].(*parse.IdentifierNode)
			lit, ok2 := c.Args[1].(*parse.StringNode)
			if ok1 && ok2 && fn.Ident == "nomadVarExists" {
				out = append(out, lit.Text)
			}
		}
	}
	return out
}

// TestCheckerFindsWhatBlocks checks the checker on templates whose fate is
// known, so that a job that would hang cannot pass for lack of a match.
func TestCheckerFindsWhatBlocks(t *testing.T) {
	cases := []struct {
		name, data string
		blocks     bool
	}{
		{"nomadVar on a literal path", `{{ with nomadVar "nomad/jobs/x" }}{{ .a }}{{ end }}`, true},
		{"nomadVar on a listed path", `{{ range $v := nomadVarList "nomad/jobs/x" }}{{ with nomadVar $v.Path }}{{ . }}{{ end }}{{ end }}`, false},
		{"nomadVar guarded by nomadVarExists", `{{ if nomadVarExists "nomad/jobs/x" }}{{ with nomadVar "nomad/jobs/x" }}{{ . }}{{ end }}{{ end }}`, false},
		{"nomadVar guarded for another path", `{{ if nomadVarExists "nomad/jobs/y" }}{{ with nomadVar "nomad/jobs/x" }}{{ . }}{{ end }}{{ end }}`, true},
		{"nomadVar in the else of its guard", `{{ if nomadVarExists "nomad/jobs/x" }}{{ else }}{{ nomadVar "nomad/jobs/x" }}{{ end }}`, true},
		{"key", `{{ key "service/x" }}`, true},
		{"key in a parenthesised argument", `{{ printf "%s" (key "service/x") }}`, true},
		{"keyOrDefault", `{{ keyOrDefault "service/x" "5" }}`, false},
		{"secret", `{{ with secret "kv/data/x" }}{{ .Data }}{{ end }}`, true},
		{"safeLs", `{{ range safeLs "x" }}{{ .Key }}{{ end }}`, true},
		{"service", `{{ range service "foresight" }}{{ .Address }}{{ end }}`, false},
		{"env", `{{ env "NOMAD_TASK_DIR" }}`, false},
		{"defined template", `{{ define "t" }}{{ key "x" }}{{ end }}{{ template "t" }}`, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			problems, err := checkTemplate(jobTemplate{data: tc.data, left: "{{", right: "}}", inline: true})
			if err != nil {
				t.Fatal(err)
			}
			if blocks := len(problems) > 0; blocks != tc.blocks {
				t.Fatalf("blocks = %v (%v), want %v", blocks, problems, tc.blocks)
			}
		})
	}
	if _, err := checkTemplate(jobTemplate{data: `{{ if }}`, left: "{{", right: "}}", inline: true}); err == nil {
		t.Fatal("a broken template parsed")
	}
}
