package jsruntime

import (
	_ "embed"
	"fmt"

	"github.com/dop251/goja"
)

// preludeName names the prelude's program in stack traces. The "smithers:" scheme marks code
// of the gateway itself, which exceptionLocation never reports as the user's.
const preludeName = "smithers:prelude.js"

// preludeSource defines globalThis.__smithers_orchestrator (SmithersError), the values behind the
// smithers-orchestrator virtual module.
//
//go:embed prelude.js
var preludeSource string

// installPrelude defines the non-enumerable globalThis.__smithers_orchestrator = {SmithersError}
// in rt. It must run before a Bundle's Code, on rt's own goroutine, once per runtime.
func installPrelude(rt *goja.Runtime) error {
	prg, err := goja.Compile(preludeName, preludeSource, true)
	if err != nil {
		return fmt.Errorf("compile prelude: %w", err)
	}
	if _, err := rt.RunProgram(prg); err != nil {
		return fmt.Errorf("run prelude: %w", err)
	}
	return nil
}
