package main

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"time"

	"gopeer/healthcheck"
)

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func runBench(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	n := fs.Int("n", 10000, "number of configs")
	rounds := fs.Int("rounds", 10, "rounds (medians are reported)")
	write := fs.String("write", "", "write one encoded Checks stream to this file")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *n < 1 || *rounds < 1 {
		return fmt.Errorf("%w: -n and -rounds must be positive", errUsage)
	}
	checks := recipeChecks(*n)
	var enc, dec []float64
	var data []byte
	for r := 0; r < *rounds; r++ {
		runtime.GC()
		// A fresh encoder and decoder each round: every Seesaw call is a new gob stream.
		var buf bytes.Buffer
		start := time.Now()
		if err := gob.NewEncoder(&buf).Encode(checks); err != nil {
			return err
		}
		enc = append(enc, float64(time.Since(start).Nanoseconds())/1e3/float64(*n))
		data = buf.Bytes()
		runtime.GC()
		var got healthcheck.Checks
		start = time.Now()
		if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&got); err != nil {
			return err
		}
		dec = append(dec, float64(time.Since(start).Nanoseconds())/1e3/float64(*n))
		if len(got.Configs) != *n {
			return fmt.Errorf("decoded %d configs, want %d", len(got.Configs), *n)
		}
	}
	if *write != "" {
		if err := os.WriteFile(*write, data, 0o644); err != nil {
			return err
		}
	}
	out, err := json.Marshal(map[string]interface{}{
		"n": *n, "rounds": *rounds, "bytes": len(data),
		"encode_us_per_config": median(enc), "decode_us_per_config": median(dec),
	})
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	return nil
}
