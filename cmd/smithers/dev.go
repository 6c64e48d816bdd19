package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/smithers-orchestrator/smithers-go/api/auth"
	"github.com/smithers-orchestrator/smithers-go/examples"
	"github.com/smithers-orchestrator/smithers-go/host"
	"github.com/smithers-orchestrator/smithers-go/tokenstore"
)

func quickstartSource() string { return examples.Quickstart }

// devTokenTTL is how long the dev token lives; it is re-issued when expired
// or revoked.
const devTokenTTL = 365 * 24 * time.Hour

// ensureDevToken keeps one full-scope dev token across restarts: the token
// is remembered in .smithers/dev-token and re-issued when the store no
// longer accepts it.
func (m *Main) ensureDevToken() error {
	if b, err := os.ReadFile(m.devTokenFile); err == nil {
		tok := strings.TrimSpace(string(b))
		ts := auth.OpenTokenStore(m.cfg.TokenStore, auth.TokenStoreOptions{Logger: slog.New(slog.DiscardHandler)})
		_, aerr := ts.Authenticate(auth.Credentials{Token: tok})
		ts.Close()
		if aerr == nil {
			return nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read dev token: %w", err)
	}
	res, err := tokenstore.Issue(m.cfg.TokenStore, tokenstore.IssueOptions{Scopes: []string{"*"}, Role: "admin", UserID: "dev", TTL: devTokenTTL, Now: time.Now()})
	if err != nil {
		return fmt.Errorf("issue dev token: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(m.devTokenFile), 0o700); err != nil {
		return err
	}
	return os.WriteFile(m.devTokenFile, []byte(res.Token+"\n"), 0o600)
}

func (m *Main) printDevBanner(url string) {
	b, _ := os.ReadFile(m.devTokenFile)
	tok := strings.TrimSpace(string(b))
	fmt.Fprintf(m.stdout, `
  Smithers dev gateway
  URL:          %s
%s  Dev token:    %s   (scopes ["*"])
  Token store:  %s
  Module:       %s
  Data:         %s

%s
`, url, m.consoleLine(url), tok, m.cfg.TokenStore, m.cfg.Module, m.databaseName(), launchHint(m.exec.Workflows(), url, tok))
}

// consoleLine is the banner's line for the operator console ("" when it
// is off).
func (m *Main) consoleLine(url string) string {
	if !m.cfg.Console {
		return ""
	}
	return fmt.Sprintf("  Console:      %s%s\n", url, m.cfg.ConsolePath)
}

// launchHint is the banner's ready-to-paste launch line, for a workflow the
// loaded module really registers (the quickstart when it is there).
func launchHint(workflows []host.WorkflowDef, url, tok string) string {
	if len(workflows) == 0 {
		return "  The module registers no workflows yet: add one with gateway.register(key, async (ctx) => ...).\n"
	}
	wf, input := workflows[0].Key, "{}"
	for _, w := range workflows {
		if w.Key == "quickstart" {
			wf, input = w.Key, `{"name":"world"}`
		}
	}
	body, _ := json.Marshal(map[string]any{"workflow": wf, "input": json.RawMessage(input)})
	return fmt.Sprintf("  Launch the %s workflow:\n    curl -s %s/v1/rpc/launchRun -H \"Authorization: Bearer %s\" -d '%s'\n", wf, url, tok, body)
}

// checkDevModule stops `smithers dev` when the module it was given does not
// exist: a typo in --module should not start an empty gateway.
func checkDevModule(path string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("module %s: %w (give the path of your gateway.mjs, or leave --module out for the quickstart)", path, err)
	}
	return nil
}
