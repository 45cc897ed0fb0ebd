// Command gopeer is the Go side of seesaw-healthcheck's tests: it writes and verifies
// golden gob files, stands in for the Seesaw engine, acts as an engine client, and
// benchmarks Go's gob on Seesaw's Checks. Standard library only.
package main

import (
	"errors"
	"fmt"
	"os"
)

const usage = `usage: gopeer MODE ...
  golden DIR                       write DIR/<case>.gob, DIR/cases.txt, DIR/nondeterministic.txt
  verify DIR                       decode DIR/<case>.gob and compare with the golden table
  engine -socket PATH (-checks FILE.json | -configs N [-port P]) [-record FILE.jsonl]
  client -socket PATH -n N [-golden-context]
                                   call a Python engine and check the recipe configs
  bench -n N [-rounds R] [-write FILE]
  httpreq -ip IP -port P [-method M] [-request R] [-proxy] [-secure] [-via-target] [-timeout D]
                                   send one request as Seesaw's HTTP check does`

// errUsage marks command-line mistakes (exit status 2).
var errUsage = errors.New("bad usage")

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	modes := map[string]func([]string) error{
		"golden":      runGolden,
		"golden-case": runGoldenCase,
		"verify":      runVerify,
		"engine":      runEngine,
		"client":      runClient,
		"bench":       runBench,
		"httpreq":     runHTTPReq,
	}
	run, ok := modes[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "gopeer: unknown mode %q\n%s\n", os.Args[1], usage)
		os.Exit(2)
	}
	if err := run(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "gopeer %s: %v\n", os.Args[1], err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
