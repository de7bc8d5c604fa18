// Command gendoc writes the configuration reference (config.Reference) into
// README.md, in place of the lines between its markers and the markers
// themselves; the rest of the file is left as it is. With -check it writes
// nothing and exits 1 if the README is not up to date.
//
//	go run ./config/internal/gendoc            # from the repository root
//	make docs
//	go generate ./config/
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/msk-consumer/msk-consumer/config"
)

func main() {
	readme := flag.String("readme", "README.md", "the README to update")
	check := flag.Bool("check", false, "exit 1 if the README differs from the generated reference, instead of writing it")
	flag.Parse()
	if err := run(*readme, *check); err != nil {
		fmt.Fprintln(os.Stderr, "gendoc:", err)
		os.Exit(1)
	}
}

func run(path string, check bool) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	updated, err := splice(string(old), config.Reference())
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if updated == string(old) {
		return nil
	}
	if check {
		return fmt.Errorf("%s: the configuration reference is out of date; run make docs", path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path, []byte(updated), fi.Mode().Perm())
}

// splice replaces the span of doc from ref's first line to its last line
// (the markers) with ref.
func splice(doc, ref string) (string, error) {
	begin, _, _ := strings.Cut(ref, "\n")
	lines := strings.Split(strings.TrimSuffix(ref, "\n"), "\n")
	end := lines[len(lines)-1]
	i := strings.Index(doc, begin+"\n")
	if i < 0 {
		return "", fmt.Errorf("no line %q", begin)
	}
	j := strings.Index(doc[i:], "\n"+end+"\n")
	if j < 0 {
		return "", fmt.Errorf("no line %q after %q", end, begin)
	}
	j += i + len("\n"+end+"\n")
	var b bytes.Buffer
	b.WriteString(doc[:i])
	b.WriteString(ref)
	b.WriteString(doc[j:])
	return b.String(), nil
}
