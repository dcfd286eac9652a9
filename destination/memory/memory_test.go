package memory_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/destinationtest"
	"github.com/secretsync/secretsync/destination/memory"
)

func TestConformance(t *testing.T) {
	destinationtest.Run(t, destinationtest.Harness{
		New: func(t *testing.T) destinationtest.Fixture {
			d := memory.New(nil)
			return destinationtest.Fixture{
				Destination: d,
				Set:         func(_ context.Context, k, v string) error { d.Set(k, v); return nil },
				Delete:      func(_ context.Context, k string) error { d.Delete(k); return nil },
			}
		},
		Concurrency: 32,
	})
}

func TestConformanceWriteOnly(t *testing.T) {
	destinationtest.Run(t, destinationtest.Harness{
		Capabilities: destination.Capabilities{WriteOnly: true},
		New: func(t *testing.T) destinationtest.Fixture {
			d := memory.NewWithOptions(nil, &memory.Options{WriteOnly: true})
			return destinationtest.Fixture{
				Destination: d,
				Set:         func(_ context.Context, k, v string) error { d.Set(k, v); return nil },
				Delete:      func(_ context.Context, k string) error { d.Delete(k); return nil },
				Get: func(_ context.Context, k string) (string, bool, error) {
					sec, ok := d.Get(k)
					return sec.Value, ok, nil
				},
			}
		},
	})
}

func TestStatsAndHooks(t *testing.T) {
	ctx := context.Background()
	var hooked []string
	d := memory.NewWithOptions(map[string]string{"A": "1"}, &memory.Options{
		BeforeApply: func(_ context.Context, c destination.Change) error {
			hooked = append(hooked, c.Key)
			if c.Key == "FAIL" {
				return fmt.Errorf("injected")
			}
			return nil
		},
	})
	a, _ := d.Get("A")
	errs, err := d.Apply(ctx, []destination.Change{
		{Key: "A", Value: "2", Expect: a.Version}, {Key: "FAIL", Value: "x"}, {Key: "A", Delete: true, Expect: "0"},
	})
	if err != nil || errs[0] != nil || errs[1] == nil || errs[2] == nil {
		t.Fatalf("Apply = %v, %v", errs, err)
	}
	if st := d.Stats(); st.Applies != 1 || st.Puts != 1 || st.Deletes != 0 {
		t.Fatalf("Stats = %+v", st)
	}
	if strings.Join(hooked, ",") != "A,FAIL,A" {
		t.Fatalf("hook saw %v", hooked)
	}
	if _, ok := d.Reader().(destination.Destination); ok {
		t.Fatal("Reader() is writable")
	}
}

func TestNoValueInFormatting(t *testing.T) {
	d := memory.New(map[string]string{"K": "canary-value"})
	sec, _ := d.Get("K")
	for _, s := range []string{fmt.Sprintf("%v %+v %#v %s", d, d, d, d), fmt.Sprintf("%v %+v %#v", sec, sec, sec),
		fmt.Sprint(destination.Change{Key: "K", Value: "canary-value"})} {
		if strings.Contains(s, "canary") {
			t.Fatalf("value printed: %s", s)
		}
	}
}
