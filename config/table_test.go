package config

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestTableCoversConfig fails when a field of Config is filled by no entry
// of the table, or by more than one: a field added without a variable, or
// a variable whose entry points at the wrong field.
func TestTableCoversConfig(t *testing.T) {
	var c Config
	owner := map[uintptr]string{}
	for _, v := range variables {
		for _, f := range v.value.fields(&c) {
			addr := reflect.ValueOf(f).Pointer()
			if prev, dup := owner[addr]; dup {
				t.Errorf("%s and %s fill the same field", prev, v.Name)
			}
			owner[addr] = v.Name
		}
	}
	var walk func(rv reflect.Value, path string)
	walk = func(rv reflect.Value, path string) {
		if rv.Kind() == reflect.Struct {
			for i := range rv.NumField() {
				walk(rv.Field(i), path+"."+rv.Type().Field(i).Name)
			}
			return
		}
		addr := rv.Addr().Pointer()
		if _, ok := owner[addr]; !ok {
			t.Errorf("Config%s: got no variable in the table, want one", path)
		}
		delete(owner, addr)
	}
	walk(reflect.ValueOf(&c).Elem(), "")
	for _, name := range owner {
		t.Errorf("%s: got a field outside Config, want one of its fields", name)
	}
}

// TestTableEntries checks what the README and the name checks rely on.
func TestTableEntries(t *testing.T) {
	seen := map[string]bool{}
	for i, v := range variables {
		t.Run(v.Name, func(t *testing.T) {
			if v.Name == "" || v.Name != strings.ToUpper(v.Name) || strings.ContainsAny(v.Name, " =") {
				t.Errorf("got name %q, want an upper-case variable name", v.Name)
			}
			if seen[v.Name] || (v.Fallback != "" && seen[v.Fallback]) {
				t.Errorf("got %s twice, want each name once", v.Name)
			}
			seen[v.Name] = true
			if v.Fallback != "" {
				seen[v.Fallback] = true
			}
			if v.value == nil || v.Section == "" {
				t.Fatalf("got value %v section %q, want both", v.value, v.Section)
			}
			if v.SameRow == "" {
				if v.Default == "" || v.Help == "" {
					t.Errorf("got default %q help %q, want both for the README", v.Default, v.Help)
				}
			} else {
				if i == 0 || variables[i-1].Section != v.Section {
					t.Errorf("got SameRow without a row before it in section %q", v.Section)
				}
				if v.Default != "" || v.Help != "" || v.Extension {
					t.Errorf("got default %q help %q extension %v on a SameRow variable, want them on its row", v.Default, v.Help, v.Extension)
				}
			}
			if isUnsupported(v.Name) {
				t.Errorf("got %s in the table and in unsupportedVars, want one or the other", v.Name)
			}
			if slices.Contains(knownVars, strings.ToLower(v.Name)) {
				t.Errorf("got a lower-case twin of %s", v.Name)
			}
		})
	}
}

// TestEnvConstantsInTable fails when a name constant in vars.go is not the
// Name or Fallback of a table entry, so that no rule can refer to a
// variable that Load does not read, Print does not show and the README
// does not document.
func TestEnvConstantsInTable(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "vars.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, s := range gd.Specs {
			vs := s.(*ast.ValueSpec)
			for i, id := range vs.Names {
				if !strings.HasPrefix(id.Name, "env") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				name, _ := strconv.Unquote(lit.Value)
				found++
				if !slices.Contains(knownVars, name) {
					t.Errorf("%s = %q: got no table entry, want one", id.Name, name)
				}
			}
		}
	}
	if want := len(knownVars); found != want {
		t.Errorf("got %d env* constants, want one per known variable (%d)", found, want)
	}
}

// TestDocumentedDefaults checks the README's default column against what
// Load does: a default in backticks loads as if it had been set, and a
// default in words ("required", "unset", "system roots") leaves the value
// empty.
func TestDocumentedDefaults(t *testing.T) {
	defaults := printed(t, env())
	for _, v := range variables {
		if v.SameRow != "" || v.Fallback != "" || v.Print != nil {
			continue // documented by their row; or not a plain value
		}
		t.Run(v.Name, func(t *testing.T) {
			literal, ok := strings.CutPrefix(v.Default, "`")
			if !ok {
				if _, given := env()[v.Name]; given {
					return // a required variable, set for the test
				}
				if got := defaults[v.Name]; got != "" {
					t.Errorf("got default %q, want empty as documented (%s)", got, v.Default)
				}
				return
			}
			literal, _, _ = strings.Cut(literal, "`")
			if got, want := defaults[v.Name], printed(t, env(v.Name, literal))[v.Name]; got != want {
				t.Errorf("got default %q, want %q as documented (%s)", got, want, v.Default)
			}
		})
	}
}

// printed loads m and returns what Print writes, by variable.
func printed(t *testing.T, m map[string]string) map[string]string {
	t.Helper()
	c, err := Load(lookup(m))
	if err != nil {
		t.Fatalf("Load: got %v, want nil", err)
	}
	var b strings.Builder
	if err := c.Print(&b); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for line := range strings.Lines(b.String()) {
		k, val, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		out[k] = val
	}
	return out
}

// TestREADMEReference fails when the configuration reference in README.md
// is not what Reference generates from the table.
func TestREADMEReference(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	i := strings.Index(readme, referenceBegin+"\n")
	j := strings.Index(readme, "\n"+referenceEnd+"\n")
	if i < 0 || j < i {
		t.Fatalf("README.md: got no lines %q ... %q, want the generated reference between them; run make docs", referenceBegin, referenceEnd)
	}
	got := readme[i : j+len("\n"+referenceEnd+"\n")]
	want := Reference()
	if got == want {
		return
	}
	gotLines, wantLines := strings.Split(got, "\n"), strings.Split(want, "\n")
	first := strings.Count(readme[:i], "\n") + 1
	for k := range max(len(gotLines), len(wantLines)) {
		g, w := "", ""
		if k < len(gotLines) {
			g = gotLines[k]
		}
		if k < len(wantLines) {
			w = wantLines[k]
		}
		if g != w {
			t.Fatalf("README.md:%d: the configuration reference is out of date; run make docs (go run ./config/internal/gendoc)\ngot  %q\nwant %q", first+k, g, w)
		}
	}
}

// TestReferenceRows checks the generated tables' shape: every variable of
// the table is named in exactly one row, in the table's order.
func TestReferenceRows(t *testing.T) {
	ref := Reference()
	if !strings.HasPrefix(ref, referenceBegin+"\n") || !strings.HasSuffix(ref, "\n"+referenceEnd+"\n") {
		t.Fatalf("got reference without its markers:\n%s", ref)
	}
	var named []string
	for line := range strings.Lines(ref) {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		if n := strings.Count(line, " | "); n != 2 {
			t.Errorf("got %d cell separators in %q, want 2", n, line)
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " | ")
		for _, part := range strings.Split(first, "`") {
			if part != "" && part != ", " && part != " / " {
				named = append(named, part)
			}
		}
	}
	if !slices.Equal(named, varOrder) {
		t.Errorf("got variables %q, want %q", named, varOrder)
	}
}
