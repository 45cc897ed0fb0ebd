// Package seesaw mirrors the few types of Seesaw's common/seesaw package that cross the
// engine socket. Names, kinds and values match Seesaw's so gob sends identical bytes.
package seesaw

// Component identifies a Seesaw component (int on the wire).
type Component int

// Components, in Seesaw's order.
const (
	SCNone Component = iota
	SCEngine
	SCECU
	SCHA
	SCHealthcheck
	SCLocalCLI
	SCNCC
	SCRemoteCLI
)

var componentNames = []string{"none", "engine", "ecu", "ha", "healthcheck", "local-cli", "ncc", "remote-cli"}

func (c Component) String() string {
	if c >= 0 && int(c) < len(componentNames) {
		return componentNames[c]
	}
	return "(unknown)"
}

// HealthcheckMode is how a check reaches its target: plain, DSR or TUN (int on the wire).
type HealthcheckMode int

// Modes.
const (
	HCModePlain HealthcheckMode = iota
	HCModeDSR
	HCModeTUN
)

// IPProto is an IANA protocol number (uint16 on the wire).
type IPProto uint16

// Protocols used by health checks.
const (
	IPProtoICMP   IPProto = 1
	IPProtoTCP    IPProto = 6
	IPProtoUDP    IPProto = 17
	IPProtoICMPv6 IPProto = 58
)
