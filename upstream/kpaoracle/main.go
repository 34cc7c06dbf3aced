// Command kpaoracle runs scenarios through Knative Serving's own autoscaler code in
// virtual time: the oracle of the harness's reference model (harness/kpa).
//
// Input: JSON scenarios on stdin, one per line (see scenario in params.go). Output: one
// JSON line per scenario, {"id": ..., "columns": {"t": [...], "decider": [...], ...}}
// with the same columns as `harness simulate`, or {"id": ..., "error": "..."}. Many
// scenarios go through one process, so a differential test pays start-up once.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "-h" || os.Args[1] == "--help") {
		fmt.Fprintln(os.Stderr, "usage: kpaoracle < scenarios.jsonl > runs.jsonl")
		os.Exit(0)
	}
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	defer out.Flush()
	dec := json.NewDecoder(in)
	enc := json.NewEncoder(out)
	env := newEnvironment()
	for {
		var sc scenario
		err := dec.Decode(&sc)
		if err == io.EOF {
			return
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "kpaoracle: bad input: %v\n", err)
			os.Exit(2)
		}
		cols, err := env.run(&sc)
		if err != nil {
			_ = enc.Encode(map[string]any{"id": sc.ID, "error": err.Error()})
		} else {
			_ = enc.Encode(map[string]any{"id": sc.ID, "columns": cols})
		}
		// Flush per scenario: the caller may stream and wait for each answer.
		if err := out.Flush(); err != nil {
			os.Exit(1)
		}
	}
}
