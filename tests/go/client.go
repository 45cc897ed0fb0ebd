package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/rpc"
	"reflect"
	"time"

	"gopeer/healthcheck"
	"gopeer/ipc"
	"gopeer/seesaw"
)

const callTimeout = 10 * time.Second

// call makes one RPC on a fresh connection, as Seesaw's healthcheck server does.
func call(socket, method string, args, reply interface{}) error {
	conn, err := net.DialTimeout("unix", socket, callTimeout)
	if err != nil {
		return fmt.Errorf("dial: %v", err)
	}
	conn.SetDeadline(time.Now().Add(callTimeout))
	client := rpc.NewClient(conn)
	defer client.Close()
	return client.Call(method, args, reply)
}

// recipeNotification is the deterministic status the client reports for check id.
func recipeNotification(id int) *healthcheck.Notification {
	state := healthcheck.StateHealthy
	if id%2 == 1 {
		state = healthcheck.StateUnhealthy
	}
	return &healthcheck.Notification{Id: healthcheck.Id(id), Status: healthcheck.Status{
		LastCheck: time.Unix(1700000000+int64(id), int64(id)).In(zoneX),
		Duration:  time.Duration(id) * time.Microsecond,
		Failures:  uint64(id % 7), Successes: uint64(id), State: state,
		Message: fmt.Sprintf("check %d", id),
	}}
}

func runClient(args []string) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	socket := fs.String("socket", "", "engine Unix socket")
	n := fs.Int("n", 0, "number of recipe configs the engine serves")
	batch := fs.Int("batch", 100, "notifications per HealthState call")
	fixed := fs.Bool("golden-context", false, "send the golden context (no pid, no user) for byte-stable captures")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *socket == "" || *n < 0 || *batch < 1 {
		return fmt.Errorf("%w: need -socket, -n >= 0, -batch >= 1", errUsage)
	}
	ctx := ipc.NewTrustedContext(seesaw.SCHealthcheck)
	if *fixed {
		ctx = goldenContext()
	}

	var checks healthcheck.Checks
	start := time.Now()
	if err := call(*socket, "SeesawEngine.Healthchecks", ctx, &checks); err != nil {
		return fmt.Errorf("Healthchecks: %v", err)
	}
	fetchMs := float64(time.Since(start).Microseconds()) / 1e3
	if len(checks.Configs) != *n {
		return fmt.Errorf("Healthchecks: got %d configs, want %d", len(checks.Configs), *n)
	}
	for id := 1; id <= *n; id++ {
		got, ok := checks.Configs[healthcheck.Id(id)]
		if !ok {
			return fmt.Errorf("Healthchecks: config %d missing", id)
		}
		if why := gobDiff(reflect.ValueOf(got), reflect.ValueOf(recipeConfig(id)), fmt.Sprintf("config %d", id)); why != "" {
			return fmt.Errorf("Healthchecks: %s", why)
		}
	}

	calls := 0
	start = time.Now()
	for first := 1; first <= *n; first += *batch {
		state := &healthcheck.HealthState{Ctx: ctx}
		for id := first; id < first+*batch && id <= *n; id++ {
			state.Notifications = append(state.Notifications, recipeNotification(id))
		}
		reply := -1
		if err := call(*socket, "SeesawEngine.HealthState", state, &reply); err != nil {
			return fmt.Errorf("HealthState call %d: %v", calls+1, err)
		}
		if reply != 0 {
			return fmt.Errorf("HealthState call %d: reply %d, want 0", calls+1, reply)
		}
		calls++
	}
	out, err := json.Marshal(map[string]interface{}{
		"ok": true, "configs": len(checks.Configs), "healthchecks_ms": fetchMs,
		"health_state_calls": calls, "notifications": *n,
		"health_state_ms": float64(time.Since(start).Microseconds()) / 1e3,
	})
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	return nil
}
