package main

import (
	"fmt"
	"net"
	"time"

	"gopeer/dns"
	"gopeer/healthcheck"
	"gopeer/seesaw"
)

// recipeConfig is config number id (1-based) of the deterministic mixed set that the
// client and bench modes use; tests/go/README.md states the same recipe for Python:
//
//	kind = (id-1) % 6: tcp, http, dns, udp, ping, radius
//	Interval (1 + id%5) s, Timeout 500 ms, Retries id%3
//	IP = net.ParseIP("127.<id>>16&255>.<id>>8&255>.<id&255>") (16 bytes), Port 1024 + id%50000
//	(ping: Port 0, Proto ICMP 1; tcp/http: Proto 6; dns/udp/radius: Proto 17)
//	tcp:    Send "ping <id>", Receive "pong <id>", Secure id%2==0
//	http:   Method "GET", Request "/health/<id>", Response "ok", ResponseCode 200, Secure id%2==0
//	dns:    Question{"host<id>.example.com.", 1, 1}, Answer "127.0.0.1"
//	udp:    Send "ping <id>", Receive "pong <id>"
//	ping:   ID uint16(id), Seqnum 1
//	radius: Username "user<id>", Password "pw<id>", Secret "secret", Response "accept"
func recipeConfig(id int) *healthcheck.Config {
	target := healthcheck.Target{
		IP:   net.ParseIP(fmt.Sprintf("127.%d.%d.%d", (id>>16)&255, (id>>8)&255, id&255)),
		Port: 1024 + id%50000,
	}
	var checker healthcheck.Checker
	switch (id - 1) % 6 {
	case 0:
		target.Proto = seesaw.IPProtoTCP
		checker = &healthcheck.TCPChecker{Target: target, Send: fmt.Sprintf("ping %d", id), Receive: fmt.Sprintf("pong %d", id), Secure: id%2 == 0}
	case 1:
		target.Proto = seesaw.IPProtoTCP
		checker = &healthcheck.HTTPChecker{Target: target, Method: "GET", Request: fmt.Sprintf("/health/%d", id), Response: "ok", ResponseCode: 200, Secure: id%2 == 0}
	case 2:
		target.Proto = seesaw.IPProtoUDP
		checker = &healthcheck.DNSChecker{Target: target, Question: dns.Question{Name: fmt.Sprintf("host%d.example.com.", id), Qtype: 1, Qclass: 1}, Answer: "127.0.0.1"}
	case 3:
		target.Proto = seesaw.IPProtoUDP
		checker = &healthcheck.UDPChecker{Target: target, Send: fmt.Sprintf("ping %d", id), Receive: fmt.Sprintf("pong %d", id)}
	case 4:
		target.Proto, target.Port = seesaw.IPProtoICMP, 0
		checker = &healthcheck.PingChecker{Target: target, ID: uint16(id), Seqnum: 1}
	default:
		target.Proto = seesaw.IPProtoUDP
		checker = &healthcheck.RADIUSChecker{Target: target, Username: fmt.Sprintf("user%d", id), Password: fmt.Sprintf("pw%d", id), Secret: "secret", Response: "accept"}
	}
	return &healthcheck.Config{
		Id:       healthcheck.Id(id),
		Interval: time.Duration(1+id%5) * time.Second,
		Timeout:  500 * time.Millisecond,
		Retries:  id % 3,
		Checker:  checker,
	}
}

// recipeChecks is configs 1..n of the recipe.
func recipeChecks(n int) *healthcheck.Checks {
	configs := make(map[healthcheck.Id]*healthcheck.Config, n)
	for id := 1; id <= n; id++ {
		configs[healthcheck.Id(id)] = recipeConfig(id)
	}
	return &healthcheck.Checks{Configs: configs}
}

// tcpChecks is n plain TCP configs (ids 1..n, 1 s interval, 500 ms timeout) to 127.0.0.1:port.
func tcpChecks(n, port int) *healthcheck.Checks {
	configs := make(map[healthcheck.Id]*healthcheck.Config, n)
	for id := 1; id <= n; id++ {
		configs[healthcheck.Id(id)] = &healthcheck.Config{
			Id: healthcheck.Id(id), Interval: time.Second, Timeout: 500 * time.Millisecond,
			Checker: &healthcheck.TCPChecker{Target: healthcheck.Target{IP: net.ParseIP("127.0.0.1"), Port: port, Proto: seesaw.IPProtoTCP}},
		}
	}
	return &healthcheck.Checks{Configs: configs}
}
