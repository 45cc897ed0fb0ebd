package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"
)

// runHTTPReq sends one request the way Seesaw's HTTPChecker does in PLAIN mode (or, with
// -via-target, in DSR/TUN mode minus the socket mark), so a test listening on loopback can
// capture the bytes Go's net/http writes for those fields. It prints the status it got (or
// fails with the client's error); the bytes are the point.
func runHTTPReq(args []string) error {
	fs := flag.NewFlagSet("httpreq", flag.ContinueOnError)
	ipText := fs.String("ip", "", "target IP")
	port := fs.Int("port", 0, "target port")
	method := fs.String("method", "GET", "HTTPChecker.Method")
	request := fs.String("request", "/", "HTTPChecker.Request (a path or an absolute URL)")
	proxy := fs.Bool("proxy", false, "HTTPChecker.Proxy")
	secure := fs.Bool("secure", false, "HTTPChecker.Secure (TLS is not verified)")
	timeout := fs.Duration("timeout", 5*time.Second, "client timeout")
	viaTarget := fs.Bool("via-target", false,
		"dial the target whatever the URL's host, as Seesaw does in DSR and TUN mode (no mark)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	ip := net.ParseIP(*ipText)
	if ip == nil || *port <= 0 || *port > 65535 || fs.NArg() != 0 {
		return fmt.Errorf("%w: need -ip IP and -port 1..65535", errUsage)
	}
	// The target address as Seesaw's Target.addr formats it.
	target := fmt.Sprintf("[%v]:%d", ip, *port)
	if ip.To4() != nil {
		target = fmt.Sprintf("%v:%d", ip, *port)
	}

	u, err := url.Parse(*request)
	if err != nil {
		return err
	}
	u.Scheme = "http"
	if *secure {
		u.Scheme = "https"
	}
	if u.Host == "" {
		u.Host = target
	}
	var proxyFunc func(*http.Request) (*url.URL, error)
	if *proxy {
		proxyFunc = http.ProxyURL(u)
	}
	var dialer func(network, addr string) (net.Conn, error)
	if *viaTarget {
		conn, err := net.DialTimeout("tcp", target, *timeout)
		if err != nil {
			return err
		}
		defer conn.Close()
		dialer = func(string, string) (net.Conn, error) { return conn, nil }
	}
	client := &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("redirect not permitted")
		},
		Transport: &http.Transport{
			Dial:            dialer,
			Proxy:           proxyFunc,
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		},
		Timeout: *timeout,
	}
	req, err := http.NewRequest(*method, *request, nil)
	if err != nil {
		return err // Seesaw would go on with a nil request; nothing to capture here
	}
	req.URL = u
	resp, err := client.Do(req)
	if resp == nil {
		return err
	}
	resp.Body.Close()
	fmt.Println(resp.Status)
	return nil
}
