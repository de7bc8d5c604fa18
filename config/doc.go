package config

import (
	"fmt"
	"strings"
)

//go:generate go run ./internal/gendoc -readme ../README.md

// The lines around the generated reference in README.md.
const (
	referenceBegin = "<!-- BEGIN GENERATED: config tables (go run ./config/internal/gendoc or make docs) -->"
	referenceEnd   = "<!-- END GENERATED -->"
)

// Reference is the configuration reference of README.md: a heading and a
// table of variable, default and meaning per section, generated from the
// same table Load, Validate and Print use. It begins and ends with the
// marker lines that delimit it in the README, so that a tool replacing it
// there (config/internal/gendoc) needs nothing else. Variables documented
// in one row share its default and meaning; extensions of the operator
// contract say so.
func Reference() string {
	var b strings.Builder
	b.WriteString(referenceBegin + "\n")
	var sec section
	for i, v := range variables {
		if v.SameRow != "" {
			continue // in the row of the variable before
		}
		if v.Section != sec {
			sec = v.Section
			fmt.Fprintf(&b, "\n### %s\n\n| variable | default | meaning |\n| --- | --- | --- |\n", sec)
		}
		names := "`" + v.Name + "`"
		for _, w := range variables[i+1:] {
			if w.SameRow == "" {
				break
			}
			names += w.SameRow + "`" + w.Name + "`"
		}
		help := v.Help
		if v.Extension {
			help = "*(extension)* " + help
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", names, cell(v.Default), cell(help))
	}
	b.WriteString("\n" + referenceEnd + "\n")
	return b.String()
}

// cell escapes what would end a Markdown table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
