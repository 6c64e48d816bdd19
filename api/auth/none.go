package auth

import "github.com/smithers-orchestrator/smithers-go/host"

// NoAuth is the authenticator of a gateway without auth (docs/configuration.md):
// every caller is an operator holding "*". It is stateless.
type NoAuth struct{}

var _ Authenticator = NoAuth{}

// Mode returns ModeNone.
func (NoAuth) Mode() string { return ModeNone }

// Authenticate accepts every caller as {Role: "operator", Scopes: ["*"]}.
func (NoAuth) Authenticate(Credentials) (host.Identity, error) {
	return host.Identity{Role: "operator", Scopes: []string{"*"}}, nil
}
