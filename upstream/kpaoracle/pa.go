package main

// The KPA reconciler's scale-to-zero logic in virtual time. scaler.go's scale and
// handleScaleToZero, kpa.go's SKS-mode choice, computeStatus and
// computeActiveCondition are unexported methods that need informers, a dynamic client
// and an activator prober, so they cannot be called from outside their package: this
// file transcribes them, line for line, over upstream's own PodAutoscaler status (its
// conditions, IsActive/IsActivating/IsInactive, ActiveFor/InactiveFor,
// CanFailActivation, IsScaleTargetInitialized) and upstream's ScaleBounds and
// GetInitialScale (resolved in params.go). Assumptions: the activator probe succeeds at
// once; the SKS is ready and its ActivatorEndpointsPopulated condition turns true the
// instant it goes to Proxy; the Deployment's spec.replicas is `replicas`.

import (
	"time"

	"knative.dev/pkg/apis"
	autoscalingv1alpha1 "knative.dev/serving/pkg/apis/autoscaling/v1alpha1"
)

const (
	scaleUnknown     = -1
	noTrafficReason  = "NoTraffic"
	noTrafficMessage = "The target is not receiving traffic."
	proxyRequeue     = 3 * time.Second
	requeueNone      = time.Duration(-1)
)

type kpa struct {
	rev        *revision
	status     *autoscalingv1alpha1.PodAutoscalerStatus
	replicas   int32
	sksProxy   bool
	proxySince time.Time
}

func (k *kpa) reachable() bool {
	return k.rev.pa.Spec.Reachability != autoscalingv1alpha1.ReachabilityUnreachable
}

func (k *kpa) activeCondition() *apis.Condition {
	for i := range k.status.Conditions {
		if k.status.Conditions[i].Type == autoscalingv1alpha1.PodAutoscalerConditionActive {
			return &k.status.Conditions[i]
		}
	}
	return nil
}

// mark runs a status change and moves the Active condition's transition time, which
// upstream takes from the wall clock, to the virtual now when the condition changed.
func (k *kpa) mark(now time.Time, change func()) {
	var before *time.Time
	if c := k.activeCondition(); c != nil {
		t := c.LastTransitionTime.Inner.Time
		before = &t
	}
	change()
	if c := k.activeCondition(); c != nil && (before == nil || !c.LastTransitionTime.Inner.Time.Equal(*before)) {
		c.LastTransitionTime.Inner.Time = now
	}
}

// state names the Active condition as the harness's rows do.
func (k *kpa) state() string {
	switch {
	case k.status.IsActive():
		return "Active"
	case k.status.IsActivating():
		return "Activating"
	default:
		return "Inactive"
	}
}

func (k *kpa) sksMode() string {
	if k.sksProxy {
		return "Proxy"
	}
	return "Serve"
}

// reconcile is one ReconcileKind pass with the decider's latest desired scale and EBC.
// It returns the requeue delay asked for (requeueNone: only on events).
func (k *kpa) reconcile(now time.Time, desired, ebc int32, ready int) time.Duration {
	want, apply, requeue := k.scale(now, desired)
	if apply {
		k.replicas = want
	}
	proxy := true
	switch {
	case want == scaleUnknown && k.status.IsInactive():
		proxy = true
	case want > 0 && ebc >= 0:
		proxy = false
	}
	if proxy != k.sksProxy {
		k.sksProxy = proxy
		if proxy {
			k.proxySince = now
		}
	}
	// computeStatus
	if !(want == scaleUnknown && k.status.DesiredScale != nil && *k.status.DesiredScale >= 0) {
		w := want
		k.status.DesiredScale = &w
	}
	k.computeActiveCondition(now, want, ready)
	return requeue
}

// scale: scaler.go's scale up to the patch of spec.replicas.
func (k *kpa) scale(now time.Time, desired int32) (int32, bool, time.Duration) {
	if desired < 0 && !k.status.IsActivating() {
		return desired, false, requeueNone
	}
	lo, hi := k.rev.minScale, k.rev.maxScale
	initial := k.rev.initialScale
	if initial > 1 && !k.status.IsScaleTargetInitialized() && k.reachable() {
		lo = max(initial, lo)
	}
	desired = applyBounds(lo, hi, desired)
	return k.handleScaleToZero(now, desired)
}

func applyBounds(lo, hi, x int32) int32 {
	if x < lo {
		return lo
	}
	if hi != 0 && x > hi {
		return hi
	}
	return x
}

func (k *kpa) handleScaleToZero(now time.Time, desired int32) (int32, bool, time.Duration) {
	if desired != 0 {
		return desired, true, requeueNone
	}
	cfg := k.rev.cfg
	if !cfg.EnableScaleToZero {
		return 1, true, requeueNone
	}
	timeout := k.rev.activationTimeout
	switch {
	case k.status.IsActivating():
		if k.status.CanFailActivation(now, timeout) {
			return desired, true, requeueNone
		}
		return scaleUnknown, false, timeout
	case k.status.IsActive():
		sw := k.rev.stableWindow
		af := k.status.ActiveFor(now)
		if af >= sw {
			requeue := requeueNone
			if k.sksProxy {
				requeue = proxyRequeue
			}
			return desired, false, requeue
		}
		return 1, true, sw - af
	default:
		lastPodTimeout := k.rev.retention
		lastPodMaxTimeout := max(cfg.ScaleToZeroGracePeriod, lastPodTimeout)
		if k.status.InactiveFor(now) >= lastPodMaxTimeout {
			return desired, true, requeueNone
		}
		if lastPodTimeout > 0 {
			if inactive := k.status.InactiveFor(now); inactive < lastPodTimeout {
				return desired, false, lastPodTimeout - inactive
			}
		}
		var pf time.Duration
		if k.sksProxy {
			pf = now.Sub(k.proxySince)
		}
		to := cfg.ScaleToZeroGracePeriod - pf
		if to <= 0 {
			return desired, true, requeueNone
		}
		return desired, false, to
	}
}

func (k *kpa) activeThreshold() int {
	lo := k.rev.minScale
	if !k.status.IsScaleTargetInitialized() {
		return int(max(lo, k.rev.initialScale))
	}
	return int(max(lo, 1))
}

func (k *kpa) computeActiveCondition(now time.Time, want int32, ready int) {
	minReady := k.activeThreshold()
	if ready >= minReady {
		k.status.MarkScaleTargetInitialized()
	}
	k.mark(now, func() {
		switch {
		case want == 0 || minReady == 0:
			if k.status.IsActivating() && minReady > 0 {
				k.status.MarkInactive("TimedOut", "The target could not be activated.")
			} else {
				k.status.MarkInactive(noTrafficReason, noTrafficMessage)
			}
		case ready < minReady:
			if want > 0 || !k.status.IsInactive() {
				k.status.MarkActivating(
					"Queued", "Requests to the target are being buffered as resources are provisioned.")
			} else {
				k.status.MarkInactive(noTrafficReason, noTrafficMessage)
			}
		case ready >= minReady:
			if want > 0 || !k.status.IsInactive() {
				k.status.MarkActive()
			}
		}
	})
}
