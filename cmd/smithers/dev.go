package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/smithers-orchestrator/smithers-go/api/auth"
	"github.com/smithers-orchestrator/smithers-go/examples"
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
		ts := auth.OpenTokenStore(m.cfg.TokenStore, auth.TokenStoreOptions{})
		_, aerr := ts.Authenticate(auth.Credentials{Token: tok})
		ts.Close()
		if aerr == nil {
			return nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read dev token: %w", err)
	}
	res, err := auth.Issue(m.cfg.TokenStore, auth.IssueOptions{Scopes: []string{"*"}, Role: "admin", UserID: "dev", TTL: devTokenTTL, Now: time.Now()})
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
  URL:        %s
  Dev token:  %s   (scopes ["*"], stored in %s)
  Module:     %s
  Data:       %s

  Launch the quickstart workflow:
    curl -s %s/v1/rpc/launchRun -H "Authorization: Bearer %s" -d '{"workflow":"quickstart","input":{"name":"world"}}'

`, url, tok, m.cfg.TokenStore, m.cfg.Module, m.cfg.DBPath, url, tok)
}
