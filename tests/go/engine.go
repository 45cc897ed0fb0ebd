package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/rpc"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"gopeer/dns"
	"gopeer/healthcheck"
	"gopeer/ipc"
	"gopeer/seesaw"
)

// jsonConfig is one config of the -checks file; missing keys are Go zero values.
type jsonConfig struct {
	ID             uint64 `json:"id"`
	Interval       string `json:"interval"`
	Timeout        string `json:"timeout"`
	Retries        int    `json:"retries"`
	Type           string `json:"type"`
	IP             string `json:"ip"`
	IP4            bool   `json:"ip4"`
	Port           int    `json:"port"`
	Host           string `json:"host"`
	Mode           int    `json:"mode"`
	Mark           int    `json:"mark"`
	Send           string `json:"send"`
	Receive        string `json:"receive"`
	TLSVerify      bool   `json:"tls_verify"`
	Method         string `json:"method"`
	Proxy          bool   `json:"proxy"`
	Request        string `json:"request"`
	Response       string `json:"response"`
	ResponseCode   int    `json:"response_code"`
	Query          string `json:"query"`
	QueryType      uint16 `json:"query_type"`
	Answer         string `json:"answer"`
	Username       string `json:"username"`
	Password       string `json:"password"`
	Secret         string `json:"secret"`
	RadiusResponse string `json:"radius_response"`
	PingID         uint16 `json:"ping_id"`
	PingSeq        uint16 `json:"ping_seq"`
}

type jsonChecks struct {
	Configs *[]jsonConfig `json:"configs"`
}

// parseIP gives net.ParseIP's 16-byte form, or To4() when four is set; "" is a nil IP.
func parseIP(s string, four bool) (net.IP, error) {
	if s == "" {
		return nil, nil
	}
	ip := net.ParseIP(s)
	if ip == nil {
		return nil, fmt.Errorf("bad IP address %q", s)
	}
	if four {
		if v4 := ip.To4(); v4 != nil {
			return v4, nil
		}
	}
	return ip, nil
}

func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	return time.ParseDuration(s)
}

func (jc *jsonConfig) toConfig() (*healthcheck.Config, error) {
	interval, err := parseDuration(jc.Interval)
	if err != nil {
		return nil, fmt.Errorf("config %d: interval: %v", jc.ID, err)
	}
	timeout, err := parseDuration(jc.Timeout)
	if err != nil {
		return nil, fmt.Errorf("config %d: timeout: %v", jc.ID, err)
	}
	ip, err := parseIP(jc.IP, jc.IP4)
	if err != nil {
		return nil, fmt.Errorf("config %d: ip: %v", jc.ID, err)
	}
	host, err := parseIP(jc.Host, jc.IP4)
	if err != nil {
		return nil, fmt.Errorf("config %d: host: %v", jc.ID, err)
	}
	target := healthcheck.Target{IP: ip, Host: host, Mark: jc.Mark, Mode: seesaw.HealthcheckMode(jc.Mode), Port: jc.Port}
	var checker healthcheck.Checker
	switch jc.Type {
	case "tcp", "tcp_tls":
		target.Proto = seesaw.IPProtoTCP
		checker = &healthcheck.TCPChecker{Target: target, Receive: jc.Receive, Send: jc.Send, Secure: jc.Type == "tcp_tls", TLSVerify: jc.TLSVerify}
	case "http", "https":
		target.Proto = seesaw.IPProtoTCP
		checker = &healthcheck.HTTPChecker{
			Target: target, Secure: jc.Type == "https", TLSVerify: jc.TLSVerify, Method: jc.Method, Proxy: jc.Proxy,
			Request: jc.Request, Response: jc.Response, ResponseCode: jc.ResponseCode,
		}
	case "dns":
		target.Proto = seesaw.IPProtoUDP
		checker = &healthcheck.DNSChecker{Target: target, Question: dns.Question{Name: jc.Query, Qtype: jc.QueryType, Qclass: 1}, Answer: jc.Answer}
	case "udp":
		target.Proto = seesaw.IPProtoUDP
		checker = &healthcheck.UDPChecker{Target: target, Receive: jc.Receive, Send: jc.Send}
	case "ping":
		target.Proto = seesaw.IPProtoICMP
		if ip != nil && ip.To4() == nil {
			target.Proto = seesaw.IPProtoICMPv6
		}
		checker = &healthcheck.PingChecker{Target: target, ID: jc.PingID, Seqnum: jc.PingSeq}
	case "radius":
		target.Proto = seesaw.IPProtoUDP
		checker = &healthcheck.RADIUSChecker{Target: target, Username: jc.Username, Password: jc.Password, Secret: jc.Secret, Response: jc.RadiusResponse}
	case "none":
		// A config without a checker: Seesaw's server runs nothing for it.
	default:
		return nil, fmt.Errorf("config %d: unknown type %q", jc.ID, jc.Type)
	}
	return &healthcheck.Config{Id: healthcheck.Id(jc.ID), Interval: interval, Timeout: timeout, Retries: jc.Retries, Checker: checker}, nil
}

// loadChecks reads the -checks file: {"configs": [...]} or {"configs": null} (nil map).
func loadChecks(path string) (*healthcheck.Checks, error) {
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
	checks := &healthcheck.Checks{}
	if jc.Configs == nil {
		return checks, nil
	}
	checks.Configs = make(map[healthcheck.Id]*healthcheck.Config, len(*jc.Configs))
	for i := range *jc.Configs {
		cfg, err := (*jc.Configs)[i].toConfig()
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		if _, dup := checks.Configs[cfg.Id]; dup {
			return nil, fmt.Errorf("%s: duplicate id %d", path, cfg.Id)
		}
		checks.Configs[cfg.Id] = cfg
	}
	return checks, nil
}

// record is one line of the -record file: one notification of one HealthState call.
type record struct {
	Call            int64       `json:"call"`
	ID              uint64      `json:"id"`
	State           int         `json:"state"`
	Failures        uint64      `json:"failures"`
	Successes       uint64      `json:"successes"`
	Message         string      `json:"message"`
	DurationNs      int64       `json:"duration_ns"`
	LastCheckUnixNs json.Number `json:"last_check_unix_ns"`
	LastCheckOffset int         `json:"last_check_offset"`
	LastCheckUTC    bool        `json:"last_check_utc"`
	CtxIdentity     string      `json:"ctx_identity"`
	CtxAuthType     int         `json:"ctx_auth_type"`
}

// unixNs is t in ns since 1970 without int64 overflow (the zero time is year 1).
func unixNs(t time.Time) json.Number {
	n := new(big.Int).Mul(big.NewInt(t.Unix()), big.NewInt(1e9))
	return json.Number(n.Add(n, big.NewInt(int64(t.Nanosecond()))).String())
}

// Engine is the SeesawEngine stand-in served over net/rpc.
type Engine struct {
	checksFile string
	fixed      *healthcheck.Checks

	mu                sync.Mutex
	record            *bufio.Writer
	recordFile        *os.File
	healthchecksCalls int64
	healthStateCalls  int64
	notifications     int64
	refused           int64
}

// The real engine's refusals, same texts.
var (
	errContext = errors.New("context is nil")
	errAccess  = errors.New("insufficient access")
)

// checkContext refuses a nil or untrusted context, as Seesaw's engine does.
func checkContext(ctx *ipc.Context) error {
	if ctx == nil {
		return errContext
	}
	if !ctx.IsTrusted() {
		return errAccess
	}
	return nil
}

// Healthchecks returns the configured checks to a trusted caller.
func (e *Engine) Healthchecks(ctx *ipc.Context, reply *healthcheck.Checks) error {
	e.mu.Lock()
	e.healthchecksCalls++
	if err := checkContext(ctx); err != nil {
		e.refused++
		e.mu.Unlock()
		return err
	}
	e.mu.Unlock()
	checks := e.fixed
	if e.checksFile != "" {
		var err error
		if checks, err = loadChecks(e.checksFile); err != nil {
			fmt.Fprintf(os.Stderr, "gopeer engine: %v\n", err)
			return err
		}
	}
	*reply = *checks
	return nil
}

// HealthState records the notifications of a trusted caller.
func (e *Engine) HealthState(args *healthcheck.HealthState, reply *int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.healthStateCalls++
	if err := checkContext(args.Ctx); err != nil {
		e.refused++
		return err
	}
	e.notifications += int64(len(args.Notifications))
	if e.record != nil {
		for _, n := range args.Notifications {
			if n == nil {
				continue
			}
			_, offset := n.LastCheck.Zone()
			line, err := json.Marshal(record{
				Call: e.healthStateCalls, ID: uint64(n.Id), State: int(n.State), Failures: n.Failures,
				Successes: n.Successes, Message: n.Message, DurationNs: int64(n.Duration),
				LastCheckUnixNs: unixNs(n.LastCheck), LastCheckOffset: offset,
				LastCheckUTC: n.LastCheck.Location() == time.UTC,
				CtxIdentity:  args.Ctx.Peer.Identity, CtxAuthType: int(args.Ctx.AuthType),
			})
			if err != nil {
				return err
			}
			e.record.Write(line)
			e.record.WriteByte('\n')
		}
		if err := e.record.Flush(); err != nil {
			return fmt.Errorf("record: %v", err)
		}
	}
	*reply = 0
	return nil
}

func runEngine(args []string) error {
	fs := flag.NewFlagSet("engine", flag.ContinueOnError)
	socket := fs.String("socket", "", "Unix socket path to serve on")
	checksFile := fs.String("checks", "", "JSON checks file, re-read on every Healthchecks call")
	configs := fs.Int("configs", -1, "serve N TCP configs instead of -checks")
	port := fs.Int("port", 80, "port of the -configs TCP checks")
	recordPath := fs.String("record", "", "append one JSON line per received notification")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *socket == "" || (*checksFile == "") == (*configs < 0) {
		return fmt.Errorf("%w: need -socket and exactly one of -checks, -configs", errUsage)
	}
	engine := &Engine{checksFile: *checksFile}
	if *configs >= 0 {
		engine.fixed = tcpChecks(*configs, *port)
	} else if _, err := loadChecks(*checksFile); err != nil {
		return err // fail fast on a bad file; it is still re-read on every call
	}
	if *recordPath != "" {
		f, err := os.OpenFile(*recordPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		engine.recordFile, engine.record = f, bufio.NewWriter(f)
		defer f.Close()
	}
	server := rpc.NewServer()
	if err := server.RegisterName("SeesawEngine", engine); err != nil {
		return err
	}
	if err := os.Remove(*socket); err != nil && !os.IsNotExist(err) {
		return err
	}
	listener, err := net.Listen("unix", *socket)
	if err != nil {
		return err
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	go func() {
		<-stop
		close(done)
		listener.Close() // unblocks Accept; net removes the socket file on Close
	}()
	fmt.Printf("listening %s\n", *socket)
	os.Stdout.Sync()
	for {
		conn, err := listener.Accept()
		if err != nil {
			select {
			case <-done:
				os.Remove(*socket)
				engine.mu.Lock()
				defer engine.mu.Unlock()
				fmt.Printf("{\"healthchecks_calls\": %d, \"health_state_calls\": %d, \"notifications\": %d, \"refused\": %d}\n",
					engine.healthchecksCalls, engine.healthStateCalls, engine.notifications, engine.refused)
				return nil
			default:
				return err
			}
		}
		go server.ServeConn(conn)
	}
}
