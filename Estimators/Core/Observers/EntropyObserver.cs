namespace MLNetQuant.Core.Observers;

/// <summary>Entropy (KL-divergence) calibration, TensorRT's method as ONNX Runtime's calibrator implements it: over a
/// streamed histogram, every candidate upper bound from one grid's worth of bins up to the full range is tried; the
/// histogram up to it (values above folded into its last bin) is compared with its own quantization to the grid's
/// levels, and the bound whose quantized distribution loses the least information (smallest KL divergence) wins.
/// The lower bound stays at the observed minimum (activations this is used for are mostly post-ReLU, min ≈ 0).</summary>
public sealed class EntropyObserver : QuantObserver
{
    private readonly StreamingHistogram _histogram;

    /// <summary>Creates the observer for a per-tensor <paramref name="spec"/>.</summary>
    /// <exception cref="ArgumentException">A per-channel scheme.</exception>
    public EntropyObserver(QuantSpec spec, int bins = 2048)
        : base(RequireScheme(spec, perChannel: false, nameof(EntropyObserver))) => _histogram = new StreamingHistogram(bins);

    /// <inheritdoc />
    protected override void ObserveCore(TorchSharp.torch.Tensor x) => _histogram.Add(x);

    /// <inheritdoc />
    protected override QParams ComputeQParamsCore()
    {
        var levels = (int)Math.Min(Spec.Range.QMax - Spec.Range.QMin + 1, _histogram.Bins);
        var best = BestUpperBin(_histogram.Counts, levels);
        var max = _histogram.Min + _histogram.BinWidth * best;
        return OnDataDevice(QParamsCalculator.FromMinMax((float)_histogram.Min, (float)Math.Max(max, _histogram.Min), Spec));
    }

    /// <summary>The number of leading bins whose KL divergence to their <paramref name="levels"/>-level quantization
    /// is smallest.</summary>
    internal static int BestUpperBin(IReadOnlyList<double> counts, int levels)
    {
        var bins = counts.Count;
        var best = bins;
        var bestDivergence = double.PositiveInfinity;
        var reference = new double[bins];
        var candidate = new double[bins];
        for (var end = levels; end <= bins; end++)
        {
            double outliers = 0;
            for (var k = end; k < bins; k++) outliers += counts[k];
            for (var k = 0; k < end; k++) reference[k] = counts[k];
            reference[end - 1] += outliers;

            // Quantize counts[0..end) into `levels` groups, then spread each group's mass over its non-empty bins.
            var perGroup = (double)end / levels;
            for (var g = 0; g < levels; g++)
            {
                var start = (int)Math.Floor(g * perGroup);
                var stop = g == levels - 1 ? end : (int)Math.Floor((g + 1) * perGroup);
                double mass = 0;
                var nonEmpty = 0;
                for (var k = start; k < stop; k++)
                {
                    mass += counts[k];
                    if (counts[k] > 0) nonEmpty++;
                }
                for (var k = start; k < stop; k++) candidate[k] = counts[k] > 0 && nonEmpty > 0 ? mass / nonEmpty : 0;
            }
            var divergence = KullbackLeibler(reference, candidate, end);
            if (divergence < bestDivergence)
            {
                bestDivergence = divergence;
                best = end;
            }
        }
        return best;
    }

    private static double KullbackLeibler(double[] p, double[] q, int length)
    {
        double pTotal = 0, qTotal = 0;
        for (var k = 0; k < length; k++)
        {
            pTotal += p[k];
            qTotal += q[k];
        }
        if (pTotal <= 0 || qTotal <= 0) return double.PositiveInfinity;
        double divergence = 0;
        for (var k = 0; k < length; k++)
        {
            if (p[k] <= 0) continue;
            var pk = p[k] / pTotal;
            // A bin the quantized distribution leaves empty (the folded outliers) gets MXNet/ONNX Runtime's smoothing
            // mass of 1e-4 rather than an infinite divergence.
            var qk = Math.Max(q[k] / qTotal, 1e-4);
            divergence += pk * Math.Log(pk / qk);
        }
        return divergence;
    }
}
