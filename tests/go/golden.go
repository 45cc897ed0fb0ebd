package main

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"io"
	"math"
	"net"
	"net/rpc"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"gopeer/dns"
	"gopeer/healthcheck"
	"gopeer/ipc"
	"gopeer/seesaw"
)

// goldenCase is one entry of the golden table: a value encoded alone on a fresh encoder,
// or (stream) several values of one type on the same encoder.
type goldenCase struct {
	name   string
	values []interface{}
	// deterministic is false where Go's map iteration order makes the bytes vary.
	deterministic bool
}

func one(name string, v interface{}) goldenCase {
	return goldenCase{name: name, values: []interface{}{v}, deterministic: true}
}

func unordered(name string, v interface{}) goldenCase {
	return goldenCase{name: name, values: []interface{}{v}}
}

func stream(name string, vs ...interface{}) goldenCase {
	return goldenCase{name: name, values: vs, deterministic: true}
}

// HealthStateZoneX is the zone of the second golden notification.
var (
	zoneX      = time.FixedZone("X", 3600)
	zoneLocal  = time.FixedZone("Local", 0)      // like time.Now() on a UTC machine: offset 0, not UTC
	zoneSecs   = time.FixedZone("LMT", 19*60+32) // Amsterdam LMT; a negative seconds offset does not round-trip in Go 1.19
	zonePlus1  = time.FixedZone("", 3600)
	bigID      = healthcheck.Id(0x1234<<48 | 3)
	goldenTime = time.Date(2024, 2, 29, 23, 59, 58, 123456789, time.UTC)
)

func goldenContext() *ipc.Context {
	return &ipc.Context{
		AuthType: ipc.ATTrusted,
		Peer:     ipc.Peer{Component: seesaw.SCHealthcheck, Identity: "healthcheck [pid 4242]"},
		User:     ipc.User{UID: "1000", Username: "seesaw"},
	}
}

// goldenCheckers returns one checker of each type with non-default fields, keyed by type.
func goldenCheckers() map[string]healthcheck.Checker {
	return map[string]healthcheck.Checker{
		"dns": &healthcheck.DNSChecker{
			Target:   healthcheck.Target{IP: net.ParseIP("2001:db8::53"), Port: 53, Proto: seesaw.IPProtoUDP},
			Question: dns.Question{Name: "www.example.com.", Qtype: 28, Qclass: 1},
			Answer:   "2001:db8::80",
		},
		"http": &healthcheck.HTTPChecker{
			Target: healthcheck.Target{
				IP: net.ParseIP("192.0.2.10"), Host: net.ParseIP("10.0.0.5"), Mark: 7,
				Mode: seesaw.HCModeDSR, Port: 443, Proto: seesaw.IPProtoTCP,
			},
			Secure: true, TLSVerify: true, Method: "HEAD", Proxy: true,
			Request: "http://example.com/healthz", Response: "OK", ResponseCode: 204,
		},
		"ping": &healthcheck.PingChecker{
			Target: healthcheck.Target{IP: net.ParseIP("::1"), Proto: seesaw.IPProtoICMPv6},
			ID:     0xBEEF, Seqnum: 42,
		},
		"radius": &healthcheck.RADIUSChecker{
			Target:   healthcheck.Target{IP: net.ParseIP("127.0.0.1").To4(), Port: 1812, Proto: seesaw.IPProtoUDP},
			Username: "probe", Password: "p\xe4ss", Secret: "s3cret", Response: "accept",
		},
		"tcp": &healthcheck.TCPChecker{
			Target: healthcheck.Target{
				IP: net.ParseIP("192.0.2.20"), Host: net.ParseIP("2001:db8::20"), Mark: 100,
				Mode: seesaw.HCModeTUN, Port: 8443, Proto: seesaw.IPProtoTCP,
			},
			Receive: "+OK", Send: "PING\r\n", Secure: true,
		},
		"udp": &healthcheck.UDPChecker{
			Target:  healthcheck.Target{IP: net.ParseIP("10.1.2.3").To4(), Port: 5353, Proto: seesaw.IPProtoUDP},
			Receive: "pong", Send: "ping",
		},
	}
}

// goldenConfig wraps a checker; ids and retries differ per checker type.
func goldenConfig(id healthcheck.Id, retries int, c healthcheck.Checker) *healthcheck.Config {
	return &healthcheck.Config{Id: id, Interval: 5 * time.Second, Timeout: 1500 * time.Millisecond, Retries: retries, Checker: c}
}

var checkerOrder = []string{"dns", "http", "ping", "radius", "tcp", "udp"}

func goldenCases() []goldenCase {
	seven := 7
	label := "two"
	labelPtr := &label
	pt := &Point{X: -1, Y: 1}
	ptPtr := &pt
	checkers := goldenCheckers()
	full := map[healthcheck.Id]*healthcheck.Config{}
	cases := []goldenCase{
		one("bool_true", true),
		one("bool_false", false),
		one("int8", int8(-128)),
		one("int16", int16(-12345)),
		one("int32", int32(math.MaxInt32)),
		one("int64_min", int64(math.MinInt64)),
		one("int64_max", int64(math.MaxInt64)),
		one("int_neg", int(-1)),
		one("int_zero", int(0)),
		one("uint8", uint8(255)),
		one("uint16", uint16(65535)),
		one("uint32", uint32(math.MaxUint32)),
		one("uint64_max", uint64(math.MaxUint64)),
		one("uint", uint(1234567)),
		one("float32", float32(-1.5)),
		one("float32_tenth", float32(0.1)),
		one("float64_pi", math.Pi),
		one("float64_tiny_neg", -2.5e-300),
		one("float64_inf", math.Inf(1)),
		one("float64_neg_inf", math.Inf(-1)),
		one("float64_neg_zero", math.Copysign(0, -1)),
		one("complex64", complex64(complex(1.5, -2))),
		one("complex128", complex(1e10, -0.25)),
		one("string_ascii", "hello, gob"),
		one("string_utf8", "h\u00e9llo w\u00f6rld \u2713"),
		one("string_non_utf8", "\xff\xfeab\x80"),
		one("string_empty", ""),
		one("bytes", []byte{0, 1, 2, 255}),
		one("array_int", [3]int{1, -2, 3}),
		one("array_string", [2]string{"a", "bc"}),
		one("array_bytes", [4]byte{9, 8, 7, 0}),
		one("slice_int", []int{1, 2, -3, 1 << 40}),
		one("slice_string", []string{"x", "", "z\u00ff"}),
		one("slice_struct", []Point{{1, 2}, {0, 0}, {-3, 4}}),
		one("slice_ptr_struct", []*Point{{5, 6}, {7, 8}}),
		one("slice_slice", [][]int{{1}, {}, {2, 3}}),
		one("map_int_string", map[int]string{7: "seven"}),
		unordered("map_int_string_multi", map[int]string{1: "one", -2: "minus two", 300: "three hundred"}),
		one("map_string_struct", map[string]Point{"origin": {}}),
		unordered("map_string_struct_multi", map[string]Point{"a": {1, 1}, "b": {2, -2}, "c": {0, 3}}),
		unordered("map_interface", map[string]interface{}{"n": 42, "s": "str", "b": []byte("raw"), "c": Circle{R: 2}}),
		one("struct_point", Point{X: 3, Y: -4}),
		one("struct_all_zero", Sparse{}),
		one("struct_sparse", Sparse{B: "only b", H: 9, I: [2]int{0, 5}}),
		one("struct_nested", Outer{Name: "outer", In: Inner{A: 1, B: "in"}, InPtr: &Inner{B: "ptr"}, Tags: []string{"t1", "t2"}, Score: 0.5}),
		one("struct_list", &Node{Val: 1, Next: &Node{Val: 2, Next: &Node{Val: 3}}}),
		one("struct_tree", Tree{Val: "root", Left: &Tree{Val: "l", Right: &Tree{Val: "lr"}}, Right: &Tree{Val: "r"}}),
		one("struct_embedded", Derived{Base: Base{ID: 11, Tag: "base"}, Extra: "more"}),
		one("struct_pointers", Ptrs{P: &seven, PP: &labelPtr, PPP: &ptPtr}),
		one("ptr_int", &seven),
		one("interface_values", Holder{
			Label: "shapes", Shape: Circle{R: 1.5},
			Many: []Shape{&Square{Side: 3}, nil, Circle{R: 0}},
			Any:  []interface{}{int(-5), "text", []string{"a", "b"}, uint8(200), 2.5, true},
		}),
		one("interface_nil_only", Holder{Label: "empty"}),
		one("gob_encoder", Celsius{deg: -40}),
		one("binary_marshaler", Version{major: 1, minor: 19}),
		one("text_marshaler", Color{R: 255, G: 128}),
		one("marshalers_in_struct", Weather{City: "Z\u00fcrich", Temp: Celsius{deg: 21}, TempPtr: &Celsius{deg: 0}, Ver: Version{major: 2}, Col: Color{B: 1}}),
		one("time_utc", goldenTime),
		one("time_plus1", time.Date(2024, 7, 1, 12, 0, 0, 5, zonePlus1)),
		one("time_seconds_offset", time.Date(1883, 11, 18, 12, 3, 58, 0, zoneSecs)),
		one("time_local_like", time.Date(2025, 1, 2, 3, 4, 5, 6, zoneLocal)),
		one("time_before_1970", time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC)),
		one("time_in_struct", Event{Name: "deploy", At: time.Date(2024, 1, 1, 0, 0, 0, 0, zoneX)}),
		one("time_zero_in_struct", Event{Name: "never"}),
		stream("stream_points", Point{1, 2}, Point{}, Point{-5, 5}),
		stream("stream_mixed_after_types", Point{9, 9}, Point{8, 8}, Point{7, 7}, Point{6, 6}),
		one("ipc_context", ipc.Context{
			AuthToken: "tok\u00e9n", AuthType: ipc.ATSSO, Groups: []string{"admins", "ops"},
			Peer:  ipc.Peer{Component: seesaw.SCLocalCLI, Identity: "local-cli [pid 1]"},
			Proxy: ipc.Peer{Component: seesaw.SCNCC, Identity: "ncc [pid 2]"},
			User:  ipc.User{Groups: []string{"wheel"}, UID: "0", Username: "root"},
		}),
		one("ipc_context_trusted", goldenContext()),
		one("rpc_request", rpc.Request{ServiceMethod: "SeesawEngine.Healthchecks"}),
		one("rpc_request_seq", rpc.Request{ServiceMethod: "SeesawEngine.HealthState", Seq: 12345}),
		// net/rpc's invalidRequest, the body of every error reply: an unnamed empty struct.
		one("rpc_empty_struct", struct{}{}),
		one("rpc_response", rpc.Response{ServiceMethod: "SeesawEngine.Healthchecks", Seq: 1, Error: "permission denied"}),
		one("checks_empty", healthcheck.Checks{Configs: map[healthcheck.Id]*healthcheck.Config{}}),
		one("checks_nil", healthcheck.Checks{}),
		one("checks_nil_checker", healthcheck.Checks{Configs: map[healthcheck.Id]*healthcheck.Config{
			9: {Id: 9, Interval: time.Second},
		}}),
		one("health_state", healthcheck.HealthState{
			Ctx: goldenContext(),
			Notifications: []*healthcheck.Notification{
				{Id: 1, Status: healthcheck.Status{
					LastCheck: time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC), Duration: 1500 * time.Microsecond,
					Successes: 10, State: healthcheck.StateHealthy, Message: "TCP connect to 127.0.0.1:80",
				}},
				{Id: 2, Status: healthcheck.Status{
					LastCheck: time.Date(2025, 1, 2, 4, 4, 5, 0, zoneX), Duration: 10 * time.Second,
					Failures: 3, State: healthcheck.StateUnhealthy, Message: "TCP connect to 127.0.0.1:81; failed to connect",
				}},
				{Id: bigID, Status: healthcheck.Status{LastCheck: time.Date(2025, 1, 2, 3, 4, 5, 999, zoneLocal)}},
				// Never run yet: Seesaw re-notifies such checks as Unknown with a zero time.
				{Id: 4},
			},
		}),
		one("health_state_empty", healthcheck.HealthState{Ctx: goldenContext()}),
	}
	for i, kind := range checkerOrder {
		id := healthcheck.Id(i + 1)
		cfg := goldenConfig(id, i%4, checkers[kind])
		full[id] = cfg
		cases = append(cases, one("checks_"+kind, healthcheck.Checks{Configs: map[healthcheck.Id]*healthcheck.Config{id: cfg}}))
	}
	full[bigID] = goldenConfig(bigID, 0, &healthcheck.TCPChecker{Target: healthcheck.Target{IP: net.ParseIP("::1"), Port: 22, Proto: seesaw.IPProtoTCP}})
	cases = append(cases, unordered("checks_full", healthcheck.Checks{Configs: full}))
	// Many configs: Go splits the value message where an interface's concrete type is
	// first defined, so the map count arrives in a message far shorter than the map.
	cases = append(cases, unordered("checks_recipe_300", *recipeChecks(300)))
	return cases
}

func encodeCase(c goldenCase) ([]byte, error) {
	var buf bytes.Buffer
	enc := gob.NewEncoder(&buf)
	for _, v := range c.values {
		if err := enc.Encode(v); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

func runGolden(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: gopeer golden DIR", errUsage)
	}
	dir := args[0]
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var names, unordered []string
	for _, c := range goldenCases() {
		// gob numbers types per process, in the order they are first sent, so each case is
		// encoded by a fresh child process: its type ids are those of a fresh Go program.
		child := exec.Command(os.Args[0], "golden-case", dir, c.name)
		child.Stderr = os.Stderr
		if err := child.Run(); err != nil {
			return fmt.Errorf("encode %s: %v", c.name, err)
		}
		names = append(names, c.name)
		if !c.deterministic {
			unordered = append(unordered, c.name)
		}
	}
	if err := writeLines(filepath.Join(dir, "cases.txt"), names); err != nil {
		return err
	}
	return writeLines(filepath.Join(dir, "nondeterministic.txt"), unordered)
}

// runGoldenCase writes DIR/NAME.gob; "gopeer golden" runs it once per case.
func runGoldenCase(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("%w: gopeer golden-case DIR NAME", errUsage)
	}
	for _, c := range goldenCases() {
		if c.name == args[1] {
			data, err := encodeCase(c)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(args[0], c.name+".gob"), data, 0o644)
		}
	}
	return fmt.Errorf("no case %q", args[1])
}

func writeLines(path string, lines []string) error {
	text := strings.Join(lines, "\n")
	if len(lines) > 0 {
		text += "\n"
	}
	return os.WriteFile(path, []byte(text), 0o644)
}

// verifyCase decodes data as the case's values, in order, and compares them.
func verifyCase(c goldenCase, data []byte) error {
	dec := gob.NewDecoder(bytes.NewReader(data))
	for i, want := range c.values {
		got := reflect.New(reflect.TypeOf(want))
		if err := dec.Decode(got.Interface()); err != nil {
			return fmt.Errorf("value %d: decode: %v", i, err)
		}
		if why := gobDiff(got.Elem(), reflect.ValueOf(want), "value"); why != "" {
			return fmt.Errorf("value %d: %s (got %+v, want %+v)", i, why, got.Elem().Interface(), want)
		}
	}
	var extra interface{}
	if err := dec.Decode(&extra); err != io.EOF {
		return fmt.Errorf("trailing data after %d value(s): %v", len(c.values), err)
	}
	return nil
}

func runVerify(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: gopeer verify DIR", errUsage)
	}
	dir := args[0]
	byName := map[string]goldenCase{}
	for _, c := range goldenCases() {
		byName[c.name] = c
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.gob"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no .gob files in %s", dir)
	}
	sort.Strings(files)
	failed := 0
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".gob")
		c, ok := byName[name]
		if !ok {
			fmt.Printf("FAIL %s: no such case\n", name)
			failed++
			continue
		}
		data, err := os.ReadFile(path)
		if err == nil {
			err = verifyCase(c, data)
		}
		if err != nil {
			fmt.Printf("FAIL %s: %v\n", name, err)
			failed++
			continue
		}
		fmt.Printf("ok %s\n", name)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d case(s) failed", failed, len(files))
	}
	return nil
}
