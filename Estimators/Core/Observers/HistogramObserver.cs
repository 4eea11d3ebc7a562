namespace MLNetQuant.Core.Observers;

/// <summary>Chooses the range that minimises the L2 quantization error of a streamed histogram
/// (PyTorch's HistogramObserver: the same greedy shrink of the [alpha, beta] quantile window in steps of 1e-5 and the
/// same error integral, ported from Caffe2's NormMinimization). Clips rare outliers that MinMax would keep.
/// One difference, on purpose: the destination grid has as many bins as the target range has levels (PyTorch always
/// uses 2^8 = 256, also for reduced or sub-8-bit ranges), so low-bit grids get the range that is best for them.
/// Inherited from PyTorch, kept for fidelity: the lower bound only moves once 1e-5 of all observed values fit in fewer
/// bins than the upper bound frees, so on small calibration sets (under ~10^5 values) only the top of the range is
/// clipped. Activations after ReLU — the common case — are unaffected.</summary>
public sealed class HistogramObserver : QuantObserver
{
    private readonly StreamingHistogram _histogram;

    /// <summary>Creates the observer for a per-tensor <paramref name="spec"/>.</summary>
    /// <param name="spec">A per-tensor grid.</param>
    /// <param name="bins">Histogram resolution (PyTorch's default 2048).</param>
    /// <exception cref="ArgumentException">A per-channel scheme.</exception>
    public HistogramObserver(QuantSpec spec, int bins = 2048)
        : base(RequireScheme(spec, perChannel: false, nameof(HistogramObserver)))
    {
        _histogram = new StreamingHistogram(bins);
    }

    /// <summary>The histogram collected so far.</summary>
    public StreamingHistogram Histogram => _histogram;

    /// <inheritdoc />
    protected override void ObserveCore(TorchSharp.torch.Tensor x) => _histogram.Add(x);

    /// <inheritdoc />
    protected override QParams ComputeQParamsCore()
    {
        var (min, max) = HistogramRangeSearch.MinimizeL2Error(_histogram, Spec.Range.Levels);
        return OnDataDevice(QParamsCalculator.FromMinMax((float)min, (float)max, Spec));
    }
}
