package tokenstore

// ListedToken describes one stored grant without its token. Absent
// optional fields are nil; times are whole milliseconds.
type ListedToken struct {
	TokenID     string   `json:"tokenId"`
	Role        string   `json:"role"`
	Scopes      []string `json:"scopes"`
	UserID      *string  `json:"userId"`
	IssuedAtMs  *int64   `json:"issuedAtMs"`
	ExpiresAtMs *int64   `json:"expiresAtMs"`
	RevokedAtMs *int64   `json:"revokedAtMs"`
}

// List describes the grants of the store at path in file order, never
// showing a token. Grants are read leniently: a field of the wrong type is
// left empty rather than failing the listing. A missing store lists
// nothing; a corrupt one is CodeTokenStoreCorrupt; other failures are
// CodeTokenListFailed. It takes no lock: writers replace the file
// atomically.
func List(path string) ([]ListedToken, error) {
	doc, err := readDocument(path)
	if err != nil {
		return nil, wrapStoreError(CodeTokenListFailed, "Could not list tokens", "read the store", err)
	}
	out := make([]ListedToken, 0, len(doc.tokens))
	for _, m := range doc.tokens {
		g, _ := decodeGrant(m.key, m.value)
		out = append(out, ListedToken{TokenID: g.TokenID, Role: g.Role, Scopes: g.Scopes, UserID: g.UserID,
			IssuedAtMs: wholeMs(g.IssuedAtMs), ExpiresAtMs: wholeMs(g.ExpiresAtMs), RevokedAtMs: wholeMs(g.RevokedAtMs)})
	}
	return out, nil
}

func wholeMs(v *float64) *int64 {
	if v == nil {
		return nil
	}
	ms := int64(*v)
	return &ms
}
