// Command grpcclient is the Go side of the gRPC API's tests: a client of
// seesaw.healthcheck.v1.Healthcheck (and grpc.health.v1.Health) built from the same .proto
// with Debian's protoc, protoc-gen-go, protoc-gen-go-grpc and Go gRPC packages.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	pb "seesaw/healthcheck/v1"
)

const usage = `usage: grpcclient MODE -addr ADDR [TLS flags] ...
  push -checks FILE.json                SetChecks with the file's checks; prints the errors as JSON
  watch -record FILE.jsonl [-for D]     WatchStatus; one JSON line per Status until D or the end
  list [-state S] [-type T] [-ip IP] [-id N]
                                        ListStatus (comma-separated values: any of them); JSON
  health [-service NAME]                grpc.health.v1 Check; exit 1 unless SERVING
ADDR: unix:PATH or HOST:PORT with a loopback HOST.
TLS flags (TCP): -ca FILE (trust it; turns TLS on), -cert FILE -key FILE (client
certificate), -server_name NAME (default: the ADDR host)`

// errUsage marks command-line mistakes (exit status 2).
var errUsage = errors.New("bad usage")

// maxMessage lifts gRPC's 4 MiB default: a full set of 50,000 statuses is bigger.
const maxMessage = 256 << 20

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	modes := map[string]func([]string) error{
		"push":   runPush,
		"watch":  runWatch,
		"list":   runList,
		"health": runHealth,
	}
	run, ok := modes[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "grpcclient: unknown mode %q\n%s\n", os.Args[1], usage)
		os.Exit(2)
	}
	if err := run(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "grpcclient %s: %v\n", os.Args[1], err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// connFlags are the flags every mode takes.
type connFlags struct {
	addr, ca, cert, key, serverName *string
	timeout                         *time.Duration
}

func newFlagSet(mode string) (*flag.FlagSet, *connFlags) {
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	return fs, &connFlags{
		addr:       fs.String("addr", "", "unix:PATH or HOST:PORT (loopback)"),
		ca:         fs.String("ca", "", "PEM CA certificate to verify the server with (turns TLS on)"),
		cert:       fs.String("cert", "", "PEM client certificate"),
		key:        fs.String("key", "", "PEM client key"),
		serverName: fs.String("server_name", "", "TLS server name (default: the ADDR host)"),
		timeout:    fs.Duration("timeout", 30*time.Second, "deadline of a unary call, and of connecting"),
	}
}

func parseFlags(fs *flag.FlagSet, cf *connFlags, args []string) error {
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if *cf.addr == "" {
		return fmt.Errorf("%w: -addr is required", errUsage)
	}
	if (*cf.cert == "") != (*cf.key == "") {
		return fmt.Errorf("%w: -cert and -key go together", errUsage)
	}
	if *cf.cert != "" && *cf.ca == "" {
		return fmt.Errorf("%w: a client certificate needs TLS: give -ca", errUsage)
	}
	return nil
}

// dial connects to ADDR, refusing any address that is not a Unix socket or loopback.
func (cf *connFlags) dial() (*grpc.ClientConn, error) {
	var network, address, authority string
	if path := strings.TrimPrefix(*cf.addr, "unix:"); path != *cf.addr {
		if path == "" {
			return nil, fmt.Errorf("%w: unix: needs a socket path", errUsage)
		}
		network, address, authority = "unix", path, "localhost"
	} else {
		host, _, err := net.SplitHostPort(*cf.addr)
		if err != nil {
			return nil, fmt.Errorf("%w: -addr %q: %v", errUsage, *cf.addr, err)
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("%w: -addr %q: only loopback addresses (tests talk to nothing else)", errUsage, *cf.addr)
		}
		network, address, authority = "tcp", *cf.addr, *cf.addr
	}
	opts := []grpc.DialOption{
		grpc.WithBlock(),
		grpc.WithReturnConnectionError(),
		grpc.FailOnNonTempDialError(true), // a refused connection fails now, not at -timeout
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessage), grpc.MaxCallSendMsgSize(maxMessage)),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, address)
		}),
	}
	if *cf.ca == "" {
		opts = append(opts, grpc.WithInsecure())
	} else {
		config, err := cf.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(config)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), *cf.timeout)
	defer cancel()
	// passthrough: the dialer above ignores the target; it only sets :authority.
	conn, err := grpc.DialContext(ctx, "passthrough:///"+authority, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %v", *cf.addr, err)
	}
	return conn, nil
}

func (cf *connFlags) tlsConfig() (*tls.Config, error) {
	pem, err := os.ReadFile(*cf.ca)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("-ca %s: no PEM certificate in it", *cf.ca)
	}
	config := &tls.Config{RootCAs: roots, ServerName: *cf.serverName, MinVersion: tls.VersionTLS12}
	if config.ServerName == "" {
		if host, _, err := net.SplitHostPort(*cf.addr); err == nil {
			config.ServerName = host
		}
	}
	if *cf.cert != "" {
		pair, err := tls.LoadX509KeyPair(*cf.cert, *cf.key)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %v", err)
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return config, nil
}

func printJSON(v interface{}) error {
	out, err := json.Marshal(v)
	if err != nil {
		return err
	}
	fmt.Printf("%s\n", out)
	return nil
}

// rpcError names the call and gives the status code by name.
func rpcError(call string, err error) error {
	s := status.Convert(err)
	return fmt.Errorf("%s: %s: %s", call, s.Code(), s.Message())
}

// --- push ------------------------------------------------------------------------------

type pushError struct {
	ID     uint64 `json:"id"`
	Index  uint32 `json:"index"`
	Reason string `json:"reason"`
}

func runPush(args []string) error {
	fs, cf := newFlagSet("push")
	checksFile := fs.String("checks", "", "JSON checks file (gopeer's -checks format)")
	if err := parseFlags(fs, cf, args); err != nil {
		return err
	}
	if *checksFile == "" {
		return fmt.Errorf("%w: -checks is required", errUsage)
	}
	checks, err := loadChecks(*checksFile)
	if err != nil {
		return err
	}
	conn, err := cf.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *cf.timeout)
	defer cancel()
	reply, err := pb.NewHealthcheckClient(conn).SetChecks(ctx, &pb.SetChecksRequest{Checks: checks})
	if err != nil {
		return rpcError("SetChecks", err)
	}
	errs := make([]pushError, 0, len(reply.Errors))
	for _, e := range reply.Errors {
		errs = append(errs, pushError{ID: e.Id, Index: e.Index, Reason: e.Reason})
	}
	return printJSON(map[string]interface{}{"sent": len(checks), "errors": errs})
}

// --- watch and list --------------------------------------------------------------------

// statusRecord is one Status as JSON; Batch, Full and FullEnd only on watch lines.
type statusRecord struct {
	Batch           int          `json:"batch,omitempty"`
	Full            bool         `json:"full,omitempty"`
	FullEnd         bool         `json:"full_end,omitempty"`
	ID              uint64       `json:"id"`
	State           int32        `json:"state"`
	StateName       string       `json:"state_name"`
	Message         string       `json:"message"`
	Failures        uint64       `json:"failures"`
	Successes       uint64       `json:"successes"`
	LastCheckUnixNs *json.Number `json:"last_check_unix_ns"` // null when unset
	DurationNs      int64        `json:"duration_ns"`
}

func toRecord(s *pb.Status) statusRecord {
	r := statusRecord{
		ID: s.Id, State: int32(s.State), StateName: s.State.String(), Message: s.Message,
		Failures: s.Failures, Successes: s.Successes, DurationNs: int64(s.Duration.AsDuration()),
	}
	if s.LastCheck != nil {
		// In big.Int: a Timestamp reaches back to year 1, past int64 nanoseconds.
		ns := new(big.Int).Mul(big.NewInt(s.LastCheck.Seconds), big.NewInt(1e9))
		n := json.Number(ns.Add(ns, big.NewInt(int64(s.LastCheck.Nanos))).String())
		r.LastCheckUnixNs = &n
	}
	return r
}

func runWatch(args []string) error {
	fs, cf := newFlagSet("watch")
	recordPath := fs.String("record", "", "append one JSON line per received Status")
	watchFor := fs.Duration("for", 0, "stop after this long (0: until the stream ends)")
	if err := parseFlags(fs, cf, args); err != nil {
		return err
	}
	if *recordPath == "" {
		return fmt.Errorf("%w: -record is required", errUsage)
	}
	f, err := os.OpenFile(*recordPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	record := bufio.NewWriter(f)
	conn, err := cf.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if *watchFor > 0 {
		ctx, cancel = context.WithTimeout(ctx, *watchFor)
	}
	defer cancel()
	stream, err := pb.NewHealthcheckClient(conn).WatchStatus(ctx, &pb.WatchStatusRequest{})
	if err != nil {
		return rpcError("WatchStatus", err)
	}
	batches, statuses, ended := 0, 0, "stream end"
	for {
		batch, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			if status.Code(err) == codes.DeadlineExceeded && ctx.Err() != nil {
				ended = "-for passed"
				break
			}
			return rpcError("WatchStatus", err)
		}
		batches++
		for _, s := range batch.Statuses {
			r := toRecord(s)
			r.Batch, r.Full, r.FullEnd = batches, batch.Full, batch.FullEnd
			line, err := json.Marshal(r)
			if err != nil {
				return err
			}
			record.Write(line)
			record.WriteByte('\n')
			statuses++
		}
		if err := record.Flush(); err != nil { // whole batches, as they arrive
			return fmt.Errorf("record: %v", err)
		}
	}
	return printJSON(map[string]interface{}{"batches": batches, "statuses": statuses, "ended": ended})
}

// splitList splits a comma-separated flag value; "" is no value.
func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// enumValue reads NAME, PREFIX_NAME (any case) or a number of an enum.
func enumValue(text, prefix string, values map[string]int32) (int32, error) {
	upper := strings.ToUpper(strings.TrimSpace(text))
	if v, ok := values[upper]; ok {
		return v, nil
	}
	if v, ok := values[prefix+upper]; ok {
		return v, nil
	}
	var n int32
	if _, err := fmt.Sscanf(text, "%d", &n); err == nil {
		return n, nil
	}
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, strings.ToLower(strings.TrimPrefix(name, prefix)))
	}
	sort.Strings(names)
	return 0, fmt.Errorf("%w: %q is not one of %s", errUsage, text, strings.Join(names, ", "))
}

func runList(args []string) error {
	fs, cf := newFlagSet("list")
	states := fs.String("state", "", "states (healthy, unhealthy, unknown)")
	types := fs.String("type", "", "checker types (tcp, http, dns, udp, ping, radius)")
	ips := fs.String("ip", "", "target ip or host addresses")
	ids := fs.String("id", "", "check ids")
	if err := parseFlags(fs, cf, args); err != nil {
		return err
	}
	req := &pb.ListStatusRequest{Ips: splitList(*ips)}
	for _, s := range splitList(*states) {
		v, err := enumValue(s, "STATE_", pb.State_value)
		if err != nil {
			return err
		}
		req.States = append(req.States, pb.State(v))
	}
	for _, t := range splitList(*types) {
		v, err := enumValue(t, "CHECKER_TYPE_", pb.CheckerType_value)
		if err != nil {
			return err
		}
		req.Types = append(req.Types, pb.CheckerType(v))
	}
	for _, text := range splitList(*ids) {
		var id uint64
		if _, err := fmt.Sscanf(text, "%d", &id); err != nil {
			return fmt.Errorf("%w: -id %q: %v", errUsage, text, err)
		}
		req.Ids = append(req.Ids, id)
	}
	conn, err := cf.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *cf.timeout)
	defer cancel()
	reply, err := pb.NewHealthcheckClient(conn).ListStatus(ctx, req)
	if err != nil {
		return rpcError("ListStatus", err)
	}
	records := make([]statusRecord, 0, len(reply.Statuses))
	for _, s := range reply.Statuses {
		records = append(records, toRecord(s))
	}
	return printJSON(map[string]interface{}{"statuses": records})
}

// --- health ----------------------------------------------------------------------------

func runHealth(args []string) error {
	fs, cf := newFlagSet("health")
	service := fs.String("service", "", "service name (\"\": the server as a whole)")
	if err := parseFlags(fs, cf, args); err != nil {
		return err
	}
	conn, err := cf.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *cf.timeout)
	defer cancel()
	reply, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: *service})
	if err != nil {
		return rpcError("Health.Check", err)
	}
	if err := printJSON(map[string]string{"status": reply.Status.String()}); err != nil {
		return err
	}
	if reply.Status != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("service %q is %s", *service, reply.Status)
	}
	return nil
}
