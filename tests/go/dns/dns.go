// Package dns holds the one type of github.com/miekg/dns that Seesaw's DNS checker sends.
package dns

// Question is a DNS question: name, type and class.
type Question struct {
	Name   string
	Qtype  uint16
	Qclass uint16
}
