namespace MLNetQuant.Core.Observers;

/// <summary>Clips the range to a central percentile of a streamed histogram: with <see cref="Percentile"/> = 99.99 the
/// lowest and highest 0.005 % of values fall outside. For symmetric schemes the range is then made symmetric around 0
/// by the larger magnitude, so both tails are cut by the same rule.</summary>
public sealed class PercentileObserver : QuantObserver
{
    private readonly StreamingHistogram _histogram;

    /// <summary>Creates the observer for a per-tensor <paramref name="spec"/>.</summary>
    /// <param name="spec">A per-tensor grid.</param>
    /// <param name="percentile">Central mass to keep, in percent, in (0, 100]; 100 keeps the full range.</param>
    /// <param name="bins">Histogram resolution.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="percentile"/> outside (0, 100].</exception>
    /// <exception cref="ArgumentException">A per-channel scheme.</exception>
    public PercentileObserver(QuantSpec spec, double percentile = 99.99, int bins = 2048)
        : base(RequireScheme(spec, perChannel: false, nameof(PercentileObserver)))
    {
        if (!(percentile > 0 && percentile <= 100))
            throw new ArgumentOutOfRangeException(nameof(percentile), percentile, "The percentile must be in (0, 100].");
        Percentile = percentile;
        _histogram = new StreamingHistogram(bins);
    }

    /// <summary>Central mass kept, in percent.</summary>
    public double Percentile { get; }

    /// <inheritdoc />
    protected override void ObserveCore(TorchSharp.torch.Tensor x) => _histogram.Add(x);

    /// <inheritdoc />
    protected override QParams ComputeQParamsCore()
    {
        var tail = (100 - Percentile) / 200;
        var min = _histogram.Quantile(tail);
        var max = _histogram.Quantile(1 - tail);
        if (Spec.Scheme.IsSymmetric())
        {
            var absMax = Math.Max(Math.Abs(min), Math.Abs(max));
            (min, max) = (-absMax, absMax);
        }
        return OnDataDevice(QParamsCalculator.FromMinMax((float)min, (float)max, Spec));
    }
}
