package types

import _ "embed"

// DeclarationsFile is the file name the declarations are shipped under.
const DeclarationsFile = "smithers-orchestrator.d.ts"

// Declarations is the text of smithers-orchestrator.d.ts.
//
//go:embed smithers-orchestrator.d.ts
var Declarations string
