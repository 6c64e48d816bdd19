package auth

// Messages of the failures a WebSocket re-checks on an open socket: a
// revoked or expired credential closes it; an unavailable store does not.
const (
	MsgTokenRevoked     = msgTokenRevoked
	MsgTokenExpired     = msgTokenExpired
	MsgJWTExpired       = msgJWTExpired
	MsgStoreUnavailable = msgStoreUnavailable
)
