// Package healthcheck mirrors the wire types of Seesaw's healthcheck package: same type
// names, field names, field order and kinds, and the same gob registrations, so that gob
// produces exactly the bytes Seesaw's binary does. Behaviour (the checks) is not here.
package healthcheck

import (
	"encoding/gob"
	"fmt"
	"net"
	"time"

	"gopeer/dns"
	"gopeer/ipc"
	"gopeer/seesaw"
)

func init() {
	// Registered as pointers, like Seesaw: the wire names are "*healthcheck.DNSChecker", ...
	gob.Register(&DNSChecker{})
	gob.Register(&HTTPChecker{})
	gob.Register(&PingChecker{})
	gob.Register(&RADIUSChecker{})
	gob.Register(&TCPChecker{})
	gob.Register(&UDPChecker{})
}

// Id identifies a health check.
type Id uint64 //nolint:revive // Seesaw's name; the wire carries it as field "Id".

// State of a health check.
type State int

// States.
const (
	StateUnknown State = iota
	StateUnhealthy
	StateHealthy
)

// Checker is implemented by the six checker types.
type Checker interface {
	String() string
}

// Target is where and how a check connects.
type Target struct {
	IP    net.IP
	Host  net.IP
	Mark  int
	Mode  seesaw.HealthcheckMode
	Port  int
	Proto seesaw.IPProto
}

func (t Target) String() string {
	return fmt.Sprintf("%s port %d proto %d mode %d host %s mark %d", t.IP, t.Port, t.Proto, t.Mode, t.Host, t.Mark)
}

// TCPChecker connects, optionally over TLS, and optionally sends and expects bytes.
type TCPChecker struct {
	Target
	Receive   string
	Send      string
	Secure    bool
	TLSVerify bool
}

func (c *TCPChecker) String() string { return "TCP " + c.Target.String() }

// HTTPChecker makes an HTTP(S) request.
type HTTPChecker struct {
	Target
	Secure       bool
	TLSVerify    bool
	Method       string
	Proxy        bool
	Request      string
	Response     string
	ResponseCode int
}

func (c *HTTPChecker) String() string { return "HTTP " + c.Target.String() }

// DNSChecker sends a DNS question and expects an answer.
type DNSChecker struct {
	Target
	Question dns.Question
	Answer   string
}

func (c *DNSChecker) String() string { return "DNS " + c.Target.String() }

// PingChecker sends an ICMP echo.
type PingChecker struct {
	Target
	ID     uint16
	Seqnum uint16
}

func (c *PingChecker) String() string { return "PING " + c.Target.String() }

// RADIUSChecker sends a RADIUS Access-Request.
type RADIUSChecker struct {
	Target
	Username string
	Password string
	Secret   string
	Response string
}

func (c *RADIUSChecker) String() string { return "RADIUS " + c.Target.String() }

// UDPChecker sends a datagram and expects a reply.
type UDPChecker struct {
	Target
	Receive string
	Send    string
}

func (c *UDPChecker) String() string { return "UDP " + c.Target.String() }

// Config is one health check as the engine configures it.
type Config struct {
	Id
	Interval time.Duration
	Timeout  time.Duration
	Retries  int
	Checker
}

// Checks is the reply of SeesawEngine.Healthchecks.
type Checks struct {
	Configs map[Id]*Config
}

// Status is the state of one check.
type Status struct {
	LastCheck time.Time
	Duration  time.Duration
	Failures  uint64
	Successes uint64
	State
	Message string
}

// Notification reports one check's status.
type Notification struct {
	Id
	Status
}

// HealthState is the argument of SeesawEngine.HealthState.
type HealthState struct {
	Ctx           *ipc.Context
	Notifications []*Notification
}
