package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	pb "seesaw/healthcheck/v1"
)

// jsonConfig is one config of a checks file, the format of gopeer's -checks file
// (tests/go/engine.go); missing keys are Go zero values.
type jsonConfig struct {
	ID             uint64 `json:"id"`
	Interval       string `json:"interval"`
	Timeout        string `json:"timeout"`
	Retries        int32  `json:"retries"`
	Type           string `json:"type"`
	IP             string `json:"ip"`
	IP4            bool   `json:"ip4"` // gob's 4-byte net.IP; the API carries text, so unused
	Port           uint32 `json:"port"`
	Host           string `json:"host"`
	Mode           int32  `json:"mode"`
	Mark           uint32 `json:"mark"`
	Send           string `json:"send"`
	Receive        string `json:"receive"`
	TLSVerify      bool   `json:"tls_verify"`
	Method         string `json:"method"`
	Proxy          bool   `json:"proxy"`
	Request        string `json:"request"`
	Response       string `json:"response"`
	ResponseCode   int32  `json:"response_code"`
	Query          string `json:"query"`
	QueryType      uint32 `json:"query_type"`
	Answer         string `json:"answer"`
	Username       string `json:"username"`
	Password       string `json:"password"`
	Secret         string `json:"secret"`
	RadiusResponse string `json:"radius_response"`
	PingID         uint32 `json:"ping_id"`
	PingSeq        uint32 `json:"ping_seq"`
}

type jsonChecks struct {
	Configs []jsonConfig `json:"configs"`
}

func parseDuration(s string) (*durationpb.Duration, error) {
	if s == "" {
		return nil, nil // unset, as gopeer's zero Duration
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return nil, err
	}
	return durationpb.New(d), nil
}

// toCheck is the API Check of a config: the same fields gopeer's engine would put in a
// healthcheck.Config, with Target.proto set by type as gopeer sets it. The IP texts are
// passed on as they are, for the server to judge.
func (jc *jsonConfig) toCheck() (*pb.Check, error) {
	interval, err := parseDuration(jc.Interval)
	if err != nil {
		return nil, fmt.Errorf("config %d: interval: %v", jc.ID, err)
	}
	timeout, err := parseDuration(jc.Timeout)
	if err != nil {
		return nil, fmt.Errorf("config %d: timeout: %v", jc.ID, err)
	}
	target := &pb.Target{
		Ip: jc.IP, Host: jc.Host, Port: jc.Port, Mode: pb.Mode(jc.Mode), Mark: jc.Mark,
	}
	check := &pb.Check{Id: jc.ID, Interval: interval, Timeout: timeout, Retries: jc.Retries, Target: target}
	switch jc.Type {
	case "tcp", "tcp_tls":
		target.Proto = pb.Protocol_PROTOCOL_TCP
		check.Checker = &pb.Check_Tcp{Tcp: &pb.TCPChecker{
			Send: []byte(jc.Send), Receive: []byte(jc.Receive), Secure: jc.Type == "tcp_tls", TlsVerify: jc.TLSVerify,
		}}
	case "http", "https":
		target.Proto = pb.Protocol_PROTOCOL_TCP
		check.Checker = &pb.Check_Http{Http: &pb.HTTPChecker{
			Method: jc.Method, Request: jc.Request, Response: jc.Response, ResponseCode: jc.ResponseCode,
			Secure: jc.Type == "https", TlsVerify: jc.TLSVerify, Proxy: jc.Proxy,
		}}
	case "dns":
		target.Proto = pb.Protocol_PROTOCOL_UDP
		check.Checker = &pb.Check_Dns{Dns: &pb.DNSChecker{
			QueryName: jc.Query, QueryType: jc.QueryType, QueryClass: 1, Answer: jc.Answer,
		}}
	case "udp":
		target.Proto = pb.Protocol_PROTOCOL_UDP
		check.Checker = &pb.Check_Udp{Udp: &pb.UDPChecker{Send: []byte(jc.Send), Receive: []byte(jc.Receive)}}
	case "ping":
		target.Proto = pb.Protocol_PROTOCOL_ICMP
		if ip := net.ParseIP(jc.IP); ip != nil && ip.To4() == nil {
			target.Proto = pb.Protocol_PROTOCOL_ICMPV6
		}
		check.Checker = &pb.Check_Ping{Ping: &pb.PingChecker{Id: jc.PingID, Seqnum: jc.PingSeq}}
	case "radius":
		target.Proto = pb.Protocol_PROTOCOL_UDP
		check.Checker = &pb.Check_Radius{Radius: &pb.RADIUSChecker{
			Username: jc.Username, Password: jc.Password, Secret: jc.Secret, Response: jc.RadiusResponse,
		}}
	case "none":
		// No checker: the server must reject it.
	default:
		return nil, fmt.Errorf("config %d: unknown type %q", jc.ID, jc.Type)
	}
	return check, nil
}

// loadChecks reads a checks file: {"configs": [...]}. Duplicate ids are kept: judging
// them is the server's job.
func loadChecks(path string) ([]*pb.Check, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var jc jsonChecks
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&jc); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	checks := make([]*pb.Check, 0, len(jc.Configs))
	for i := range jc.Configs {
		check, err := jc.Configs[i].toCheck()
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		checks = append(checks, check)
	}
	return checks, nil
}
