package scaffold

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/smithers-orchestrator/smithers-go/types"
)

//go:embed templates
var templates embed.FS

// Options say what to write where.
type Options struct {
	// Dir is the project directory (created when missing); "" is ".".
	Dir string
	// TypeScript writes gateway.ts and tsconfig.json instead of
	// gateway.mjs and jsconfig.json.
	TypeScript bool
	// Force overwrites files that exist with other content.
	Force bool
}

// File is one file of the starter project.
type File struct {
	// Path is relative to the project directory, with slashes.
	Path    string
	Content []byte
}

// Files returns the starter project's files, the module first.
func Files(typeScript bool) []File {
	module, config := "gateway.mjs", "jsconfig.json"
	if typeScript {
		module, config = "gateway.ts", "tsconfig.json"
	}
	return []File{
		{Path: module, Content: template(module)},
		{Path: "types/" + types.DeclarationsFile, Content: []byte(types.Declarations)},
		{Path: config, Content: template(config)},
	}
}

func template(name string) []byte {
	b, err := fs.ReadFile(templates, "templates/"+name)
	if err != nil {
		panic(fmt.Sprintf("scaffold: template %s is not embedded: %v", name, err)) // a build mistake
	}
	return b
}

// ModuleFile is the path of the starter module for o, as `smithers dev
// --module` takes it.
func ModuleFile(o Options) string {
	return filepath.Join(dirOf(o), Files(o.TypeScript)[0].Path)
}

func dirOf(o Options) string {
	if o.Dir == "" {
		return "."
	}
	return o.Dir
}

// Result says what Write did with each file, by path (as joined with the
// project directory).
type Result struct {
	Written   []string // created or overwritten
	Unchanged []string // already there with the same content
}

// ExistsError is returned when files exist with other content and Force is
// not set; nothing was written.
type ExistsError struct {
	Paths []string
}

func (e *ExistsError) Error() string {
	verb := "exist"
	if len(e.Paths) == 1 {
		verb = "exists"
	}
	return fmt.Sprintf("%s already %s; nothing was written (use --force to overwrite)", strings.Join(e.Paths, ", "), verb)
}

// Write writes the starter project into o.Dir. A file that exists with the
// same content is left alone; one with other content is an *ExistsError
// unless o.Force, and then nothing is written at all.
func Write(o Options) (Result, error) {
	dir := dirOf(o)
	files := Files(o.TypeScript)
	var res Result
	var conflicts []string
	todo := files[:0:0]
	for _, f := range files {
		path := filepath.Join(dir, filepath.FromSlash(f.Path))
		old, err := os.ReadFile(path)
		switch {
		case err == nil && bytes.Equal(old, f.Content):
			res.Unchanged = append(res.Unchanged, path)
			continue
		case err == nil && !o.Force:
			conflicts = append(conflicts, path)
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return Result{}, fmt.Errorf("check %s: %w", path, err)
		}
		todo = append(todo, f)
	}
	if len(conflicts) > 0 {
		return Result{}, &ExistsError{Paths: conflicts}
	}
	for _, f := range todo {
		path := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return res, fmt.Errorf("create %s: %w", filepath.Dir(path), err)
		}
		if err := os.WriteFile(path, f.Content, 0o644); err != nil {
			return res, fmt.Errorf("write %s: %w", path, err)
		}
		res.Written = append(res.Written, path)
	}
	return res, nil
}
