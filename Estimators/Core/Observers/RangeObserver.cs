using TorchSharp;
using static TorchSharp.torch;

namespace MLNetQuant.Core.Observers;

/// <summary>Base of the min/max observers: keeps a running minimum and maximum (per tensor, or per channel), either
/// the extremes of all batches or their exponential moving average, and computes qparams from them with
/// <see cref="QParamsCalculator"/>.</summary>
public abstract class RangeObserver : QuantObserver
{
    private Tensor? _min;
    private Tensor? _max;

    /// <summary>Creates the observer; <paramref name="perChannel"/> says which schemes it accepts, and
    /// <paramref name="averagingConstant"/> (null for plain extremes) the weight of each new batch in a moving average.</summary>
    protected RangeObserver(QuantSpec spec, bool perChannel, string observerName, double? averagingConstant = null)
        : base(RequireScheme(spec, perChannel, observerName))
    {
        AveragingConstant = averagingConstant is double c ? MovingAverage.ValidateConstant(c) : null;
    }

    /// <summary>Weight of the newest batch in the moving average; null when the observer keeps plain extremes.</summary>
    public double? AveragingConstant { get; }

    /// <summary>The running minimum, shape [1] or [channels]; null before the first batch.</summary>
    public Tensor? MinVal => _min;

    /// <summary>The running maximum, shape [1] or [channels]; null before the first batch.</summary>
    public Tensor? MaxVal => _max;

    /// <inheritdoc />
    protected sealed override void ObserveCore(Tensor x)
    {
        var (batchMin, batchMax) = BatchMinMax(x);
        // NaN and infinities propagate into the extremes, so checking them (one synchronisation) checks the batch.
        TensorChecks.ThrowIfNotFinite(cat(new[] { batchMin, batchMax }), nameof(x));
        if (_min is null || _max is null)
        {
            // Observer state outlives any dispose scope the caller has open (e.g. one per training step).
            _min = batchMin.clone().DetachFromDisposeScope();
            _max = batchMax.clone().DetachFromDisposeScope();
            return;
        }
        if (_min.shape[0] != batchMin.shape[0])
            throw new ArgumentException(
                $"The batch has {batchMin.shape[0]} channels along axis {Spec.ChannelAxis}; earlier batches had {_min.shape[0]}.",
                nameof(x));
        if (AveragingConstant is double c)
        {
            MovingAverage.Step(_min, batchMin, c);
            MovingAverage.Step(_max, batchMax, c);
        }
        else
        {
            _min.copy_(minimum(_min, batchMin));
            _max.copy_(maximum(_max, batchMax));
        }
    }

    /// <inheritdoc />
    protected sealed override QParams ComputeQParamsCore() => QParamsCalculator.Compute(_min!, _max!, Spec);

    /// <summary>Minimum and maximum of the batch: shape [1], or [channels] for per-channel schemes.</summary>
    private (Tensor Min, Tensor Max) BatchMinMax(Tensor x)
    {
        if (!Spec.Scheme.IsPerChannel()) return (x.min().reshape(1), x.max().reshape(1));
        var channels = x.shape[Spec.ChannelAxis];
        var flat = x.movedim(new long[] { Spec.ChannelAxis }, new long[] { 0 }).reshape(channels, -1);
        return (flat.amin(new long[] { 1 }), flat.amax(new long[] { 1 }));
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _min?.Dispose();
            _max?.Dispose();
        }
        base.Dispose(disposing);
    }
}
