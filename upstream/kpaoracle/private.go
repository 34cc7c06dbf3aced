package main

import (
	"reflect"
	"time"
	"unsafe"

	"knative.dev/serving/pkg/autoscaler/aggregation/max"
	"knative.dev/serving/pkg/autoscaler/scaling"
)

// Upstream's decider reads the wall clock once, in New: a decider created over more
// than one ready pod starts panicking at time.Now(). In virtual time that instant is
// the scenario's t = 0, so the driver moves panicTime there. It also reads panicTime
// (the panic_mode column) and seeds the scale-down-delay window of a revision that has
// run long before t = 0. Nothing else of the decider is touched.

func privateField[T any](uni scaling.UniScaler, name string) *T {
	v := reflect.ValueOf(uni).Elem().FieldByName(name)
	if !v.IsValid() || v.Type() != reflect.TypeFor[T]() {
		panic("kpaoracle: upstream autoscaler has no field " + name + " of the expected type")
	}
	return (*T)(unsafe.Pointer(v.UnsafeAddr()))
}

func panicTime(uni scaling.UniScaler) *time.Time { return privateField[time.Time](uni, "panicTime") }

func delayWindow(uni scaling.UniScaler) *max.TimeWindow {
	return *privateField[*max.TimeWindow](uni, "delayWindow")
}
