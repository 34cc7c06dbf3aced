package main

// The virtual-time loop: the same world as harness/kpa/simulate.py (pods, scrapes,
// activator stats and pokes, decider ticks every 2 s, reconciles on events and
// requeues), with Knative's own code where Knative decides: the MetricCollector and
// its buckets (metrics.Record -> aggregation.TimedFloat64Buckets or
// WeightedFloat64Buckets), the decider (scaling.New(...).Scale), the parameters
// (config.NewConfigFromMap, MakeDecider, MakeMetric, ScaleBounds, GetInitialScale).

import (
	"fmt"
	"math"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"
	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/types"
	"knative.dev/serving/pkg/apis/autoscaling"
	autoscalingv1alpha1 "knative.dev/serving/pkg/apis/autoscaling/v1alpha1"
	"knative.dev/serving/pkg/autoscaler/metrics"
	"knative.dev/serving/pkg/autoscaler/scaling"
)

// epoch is virtual t = 0: a whole, even Unix second, so 1 s buckets and the 2 s slots
// of the scale-down-delay window fall on the same seconds as the harness's model.
var epoch = time.Unix(1_800_000_000, 0)

func at(t int) time.Time { return epoch.Add(time.Duration(t) * time.Second) }

const maxSameInstantPasses = 4

// longAgo: when a revision that is not fresh entered its PA state.
var longAgo = epoch.Add(-1000 * time.Hour)

type podCounter struct{ ready int }

func (p *podCounter) ReadyCount() (int, error)    { return p.ready, nil }
func (p *podCounter) NotReadyCount() (int, error) { return 0, nil }

type environment struct {
	collector *metrics.MetricCollector
	logger    *zap.SugaredLogger
	meter     noop.MeterProvider
	n         int
}

func newEnvironment() *environment {
	logger := zap.NewNop().Sugar()
	// No scraper: the driver feeds each second's stat through Record, in virtual time.
	factory := func(*autoscalingv1alpha1.Metric, *zap.SugaredLogger) (metrics.StatsScraper, error) {
		return nil, nil
	}
	return &environment{
		collector: metrics.NewMetricCollector(factory, logger),
		logger:    logger,
		meter:     noop.NewMeterProvider(),
	}
}

type columns struct {
	T         []int     `json:"t"`
	Load      []float64 `json:"load"`
	Ready     []int     `json:"ready"`
	Replicas  []int32   `json:"replicas"`
	Stable    []float64 `json:"stable"`
	Panic     []float64 `json:"panic"`
	Decider   []int32   `json:"decider"`
	Desired   []int32   `json:"desired"`
	PanicMode []bool    `json:"panic_mode"`
	EBC       []int32   `json:"ebc"`
	PAState   []string  `json:"pa_state"`
	SKSMode   []string  `json:"sks_mode"`
	Valid     []bool    `json:"valid"`
	Poke      []bool    `json:"poke"`
}

func (e *environment) run(sc *scenario) (*columns, error) {
	e.n++
	name := fmt.Sprintf("rev-%d", e.n)
	rev, err := resolveRevision(sc, name)
	if err != nil {
		return nil, err
	}
	initialReady := 1
	if sc.InitialReady != nil {
		initialReady = *sc.InitialReady
	}
	if initialReady < 0 || sc.PodStartup < 0 {
		return nil, fmt.Errorf("initial_ready and pod_startup must be >= 0")
	}
	end := len(sc.Load)
	if sc.Until != nil {
		end = int(math.Floor(*sc.Until))
	}
	trace := make([]float64, end+2)
	copy(trace, sc.Load[:min(len(sc.Load), end+1)])
	startup := int(math.Ceil(sc.PodStartup))
	spec := rev.decider.Spec
	isRPS := spec.ScalingMetric == autoscaling.RPS

	if err := e.collector.CreateOrUpdate(rev.metric); err != nil {
		return nil, err
	}
	defer e.collector.Delete(namespace, name)
	key := types.NamespacedName{Namespace: namespace, Name: name}
	scraped := rev.metric.Spec.ScrapeTarget != ""
	record := func(t int, x float64) {
		e.collector.Record(key, at(t), metrics.Stat{AverageConcurrentRequests: x, RequestCount: x})
	}
	stableAndPanic := e.collector.StableAndPanicConcurrency
	if isRPS {
		stableAndPanic = e.collector.StableAndPanicRPS
	}

	ready := initialReady
	var pending []int // ready-at seconds of starting pods, ascending
	counter := &podCounter{}
	k := &kpa{rev: rev, status: &rev.pa.Status}
	var lastDesired, ebc int32
	var uni scaling.UniScaler
	actPrev := false

	if sc.Fresh {
		counter.ready = ready
		uni = scaling.New(attribute.NewSet(), e.meter, namespace, name, e.collector, counter, &spec)
		if pt := panicTime(uni); !pt.IsZero() {
			*pt = at(0)
		}
		lastDesired = -1
		ebc = initialEBC(spec) // multiscaler.go Create
		k.replicas = int32(max(initialReady, int(rev.initialScale)))
		if !sc.HoldReady {
			for i := initialReady; i < int(k.replicas); i++ {
				pending = append(pending, startup)
			}
		}
		k.status.InitializeConditions()
		k.activeCondition().LastTransitionTime.Inner.Time = at(0)
		k.sksProxy, k.proxySince = true, at(0)
	} else {
		h := trace[0]
		if sc.History != nil {
			h = *sc.History
		}
		if ready > 0 && (scraped || h > 0) {
			n := int(math.Ceil(spec.StableWindow.Seconds()))
			for t := 1 - n; t <= 0; t++ {
				record(t, h)
			}
		}
		uni = scaling.New(attribute.NewSet(), e.meter, namespace, name, e.collector, counter, &spec)
		counter.ready = ready
		if spec.ScaleDownDelay > 0 {
			delayWindow(uni).Record(at(0), int32(ready))
		}
		lastDesired = int32(ready)
		if tbc := spec.TargetBurstCapacity; tbc > 0 {
			seen := 0.0
			if ready > 0 {
				seen = h
			}
			ebc = int32(math.Floor(float64(ready)*spec.TotalValue - tbc - seen))
		} else {
			ebc = int32(tbc)
		}
		proxy := ready == 0 || ebc < 0
		k.replicas = int32(ready)
		k.status.InitializeConditions()
		if ready > 0 {
			k.status.MarkActive()
		} else {
			k.status.MarkInactive(noTrafficReason, noTrafficMessage)
		}
		k.activeCondition().LastTransitionTime.Inner.Time = longAgo
		k.status.MarkScaleTargetInitialized()
		d := int32(ready)
		k.status.DesiredScale = &d
		k.sksProxy = proxy
		k.proxySince = longAgo
		actPrev = proxy && ready > 0 && h > 0
	}

	out := &columns{ // empty, not null, when no tick ran
		T: []int{}, Load: []float64{}, Ready: []int{}, Replicas: []int32{}, Stable: []float64{},
		Panic: []float64{}, Decider: []int32{}, Desired: []int32{}, PanicMode: []bool{},
		EBC: []int32{}, PAState: []string{}, SKSMode: []string{}, Valid: []bool{}, Poke: []bool{},
	}
	requeueAt := math.MaxInt
	reconcileDue := true
	rpsFirst := false

	for t := 0; t <= end; t++ {
		// 1. pods that finished starting
		if len(pending) > 0 && pending[0] <= t {
			for len(pending) > 0 && pending[0] <= t {
				pending = pending[1:]
				ready++
			}
			reconcileDue = true
		}
		counter.ready = ready
		poke := false
		// 2. observation of [t-1, t)
		if t > 0 {
			x := trace[t-1]
			if rpsFirst {
				if x > 1 {
					x--
				} else {
					x = 0
				}
				rpsFirst = false
			}
			if scraped && ready > 0 {
				record(t, x)
			} else if actPrev && x > 0 {
				record(t, x)
			}
			if actPrev && x > 0 && lastDesired == 0 {
				poke = true
			}
		}
		// 3. first request at the activator after an idle second
		cur := trace[t]
		inPath := ready == 0 || k.sksProxy
		if inPath && cur > 0 && !actPrev {
			record(t, 1)
			rpsFirst = isRPS
			if lastDesired == 0 {
				poke = true
			}
		}
		actPrev = inPath && cur > 0
		// 4. decider tick
		tick := poke || (t > 0 && t%2 == 0)
		var res scaling.ScaleResult
		var seen int
		var stable, panicV float64
		if tick {
			seen = ready
			if s, p, err := stableAndPanic(key, at(t)); err == nil {
				stable, panicV = s, p
			}
			res = uni.Scale(e.logger, at(t))
			if res.ScaleValid {
				if res.DesiredPodCount != lastDesired || (res.ExcessBurstCapacity < 0) != (ebc < 0) {
					reconcileDue = true
				}
				lastDesired = res.DesiredPodCount
				ebc = res.ExcessBurstCapacity
			}
		}
		// 5. reconcile
		if reconcileDue || t >= requeueAt {
			reconcileDue = false
			if t >= requeueAt {
				requeueAt = math.MaxInt
			}
			for range maxSameInstantPasses {
				beforeState, beforeProxy := k.state(), k.sksProxy
				if rq := k.reconcile(at(t), lastDesired, ebc, ready); rq != requeueNone {
					requeueAt = min(requeueAt, t+int(math.Ceil(rq.Seconds())))
				}
				// 6. pods follow replicas
				if !sc.HoldReady {
					have := ready + len(pending)
					want := int(k.replicas)
					if want > have {
						for i := have; i < want; i++ {
							pending = append(pending, t+startup)
						}
					} else if want < have {
						drop := have - want
						cut := min(drop, len(pending))
						pending = pending[:len(pending)-cut]
						if drop > cut {
							ready -= drop - cut
							counter.ready = ready
							reconcileDue = true
						}
					}
				}
				if k.state() == beforeState && k.sksProxy == beforeProxy {
					break
				}
			}
		}
		if tick {
			out.T = append(out.T, t)
			out.Load = append(out.Load, cur)
			out.Ready = append(out.Ready, seen)
			out.Replicas = append(out.Replicas, k.replicas)
			out.Stable = append(out.Stable, stable)
			out.Panic = append(out.Panic, panicV)
			out.Decider = append(out.Decider, lastDesired)
			out.Desired = append(out.Desired, k.status.GetDesiredScale())
			out.PanicMode = append(out.PanicMode, !panicTime(uni).IsZero())
			out.EBC = append(out.EBC, ebc)
			out.PAState = append(out.PAState, k.state())
			out.SKSMode = append(out.SKSMode, k.sksMode())
			out.Valid = append(out.Valid, res.ScaleValid)
			out.Poke = append(out.Poke, poke)
		}
	}
	return out, nil
}

// initialEBC is the EBC a new decider publishes (multiscaler.go Create).
func initialEBC(spec scaling.DeciderSpec) int32 {
	switch tbc := spec.TargetBurstCapacity; tbc {
	case -1, 0:
		return int32(tbc)
	default:
		return int32(float64(spec.InitialScale)*spec.TotalValue - tbc)
	}
}
