// Package ipc mirrors the types of Seesaw's common/ipc package that cross the engine socket.
package ipc

import (
	"fmt"
	"os"
	"os/user"
	"strconv"

	"gopeer/seesaw"
)

// AuthType says how a caller was authenticated (int on the wire).
type AuthType int

// Authentication types, in Seesaw's order.
const (
	ATNone AuthType = iota
	ATSSO
	ATTrusted
	ATUntrusted
)

// Peer is one end of an IPC call.
type Peer struct {
	Component seesaw.Component
	Identity  string
}

// User is the user on whose behalf a call is made.
type User struct {
	Groups   []string
	UID      string
	Username string
}

// Context travels with every engine call.
type Context struct {
	AuthToken string
	AuthType  AuthType
	Groups    []string
	Peer      Peer
	Proxy     Peer
	User      User
}

// NewTrustedContext builds the context a local Seesaw component sends: trusted, with this
// process's pid in the identity and the current user's name and uid.
func NewTrustedContext(component seesaw.Component) *Context {
	ctx := &Context{
		AuthType: ATTrusted,
		Peer:     Peer{Component: component, Identity: fmt.Sprintf("%s [pid %d]", component, os.Getpid())},
	}
	if u, err := user.Current(); err == nil {
		ctx.User.Username, ctx.User.UID = u.Username, u.Uid
	} else {
		ctx.User.UID = strconv.Itoa(os.Getuid())
	}
	return ctx
}

// IsTrusted reports whether the caller is a trusted local component.
func (ctx *Context) IsTrusted() bool { return ctx != nil && ctx.AuthType == ATTrusted }
