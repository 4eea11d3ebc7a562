using MLNetQuant.Core;
using MLNetQuant.Core.Observers;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNetQuant.UnitTests.Core;

/// <summary>The behaviour that defines each observer beyond the golden cases.</summary>
[TestClass]
public sealed class ObserverBehaviourTests
{
    [TestInitialize]
    public void Seed() => manual_seed(1234);

    [TestMethod]
    public void MovingAveragePerChannel_FirstBatchInitialisesThenAverages()
    {
        var spec = QuantSpec.Int8PerChannelSymmetricWeights;
        using var observer = new MovingAveragePerChannelMinMaxObserver(spec, averagingConstant: 0.25);
        using var first = tensor(new[] { -1f, 2f, -4f, 8f }, new long[] { 2, 2 });
        using var second = tensor(new[] { -3f, 6f, 0f, 0f }, new long[] { 2, 2 });
        observer.Observe(first);
        CollectionAssert.AreEqual(new[] { -1f, -4f }, observer.MinVal!.data<float>().ToArray());
        CollectionAssert.AreEqual(new[] { 2f, 8f }, observer.MaxVal!.data<float>().ToArray());
        observer.Observe(second);
        // v + 0.25 (batch − v): channel 0 min −1 → −1.5, max 2 → 3; channel 1 min −4 → −3, max 8 → 6.
        CollectionAssert.AreEqual(new[] { -1.5f, -3f }, observer.MinVal!.data<float>().ToArray());
        CollectionAssert.AreEqual(new[] { 3f, 6f }, observer.MaxVal!.data<float>().ToArray());
    }

    [TestMethod]
    public void Observers_KeepTheirStateAcrossCallerDisposeScopes()
    {
        // A training loop typically opens one dispose scope per step; observer state must survive it.
        using var minMax = new MinMaxObserver(QuantSpec.UInt8PerTensorAffineActivations);
        using var perChannel = new MovingAveragePerChannelMinMaxObserver(QuantSpec.Int8PerChannelSymmetricWeights);
        for (var step = 0; step < 3; step++)
        {
            using var scope = NewDisposeScope();
            minMax.Observe(tensor(new[] { -step - 1f, step + 1f }));
            perChannel.Observe(randn(2, 5));
        }
        Assert.AreEqual(-3f, minMax.MinVal!.item<float>());
        Assert.AreEqual(3f, minMax.MaxVal!.item<float>());
        using var q = perChannel.ComputeQParams();
        Assert.HasCount(2, q.ScaleValues());
    }

    [TestMethod]
    public void MinMax_AcrossBatches_KeepsTheExtremes()
    {
        using var observer = new MinMaxObserver(QuantSpec.UInt8PerTensorAffineActivations);
        observer.Observe(tensor(new[] { -1f, 0.5f }));
        observer.Observe(tensor(new[] { 0f, 3f }));
        observer.Observe(tensor(new[] { -0.5f, 1f }));
        Assert.AreEqual(-1f, observer.MinVal!.item<float>());
        Assert.AreEqual(3f, observer.MaxVal!.item<float>());
    }

    [TestMethod]
    [DataRow(8, 1.0, 0.99)]
    [DataRow(4, 0.75, 0.6)]
    public void Histogram_OnHeavyTailedData_ClipsTheTailAndBeatsMinMax(int bits, double maxRangeRatio, double maxMseRatio)
    {
        // Exponential data (a ReLU output with a long tail): the L2-optimal range cuts the tail, more so at fewer bits.
        var spec = new QuantSpec(QuantDtype.UInt, bits, QuantScheme.PerTensorAffine);
        using var data = rand(50_000).log().neg();
        using var minMax = new MinMaxObserver(spec);
        using var histogram = new HistogramObserver(spec);
        foreach (var batch in data.split(5_000))
        {
            minMax.Observe(batch);
            histogram.Observe(batch);
        }
        using var minMaxParams = minMax.ComputeQParams();
        using var histogramParams = histogram.ComputeQParams();
        var minMaxRange = minMaxParams.ScaleValues()[0] * spec.Range.QMax;
        var histogramRange = histogramParams.ScaleValues()[0] * spec.Range.QMax;
        Assert.IsLessThan(minMaxRange * maxRangeRatio, histogramRange, $"{bits}-bit: range {histogramRange} vs MinMax {minMaxRange}");
        var minMaxMse = QuantizationMse(data, minMaxParams);
        var histogramMse = QuantizationMse(data, histogramParams);
        Assert.IsLessThan(minMaxMse * maxMseRatio, histogramMse, $"{bits}-bit: MSE {histogramMse} vs MinMax {minMaxMse}");
    }

    [TestMethod]
    public void Histogram_FewerBits_ClipMoreAggressively()
    {
        using var data = rand(40_000).log().neg();
        using var eightBit = new HistogramObserver(new QuantSpec(QuantDtype.UInt, 8, QuantScheme.PerTensorAffine));
        using var fourBit = new HistogramObserver(new QuantSpec(QuantDtype.UInt, 4, QuantScheme.PerTensorAffine));
        eightBit.Observe(data);
        fourBit.Observe(data);
        using var q8 = eightBit.ComputeQParams();
        using var q4 = fourBit.ComputeQParams();
        var clip8 = q8.ScaleValues()[0] * 255;
        var clip4 = q4.ScaleValues()[0] * 15;
        Assert.IsLessThan(clip8 * 0.8f, clip4, $"4-bit clip {clip4} should be well below 8-bit clip {clip8}");
    }

    [TestMethod]
    public void Histogram_StreamedInBatches_MatchesOneBatchClosely_WithConstantMemory()
    {
        var spec = QuantSpec.UInt8PerTensorAffineActivations;
        using var data = randn(30_000).mul(CachedScalars.Of(2)).add(CachedScalars.Of(1), CachedScalars.One);
        using var whole = new HistogramObserver(spec);
        using var streamed = new HistogramObserver(spec);
        whole.Observe(data);
        // Growing ranges: each batch widens the histogram, exercising the redistribution.
        foreach (var batch in data.sort().Values.split(1_000)) streamed.Observe(batch);
        Assert.AreEqual(2048, streamed.Histogram.Bins);
        Assert.AreEqual(30_000, streamed.Histogram.Total, 1e-6);
        using var a = whole.ComputeQParams();
        using var b = streamed.ComputeQParams();
        Assert.AreEqual(a.ScaleValues()[0], b.ScaleValues()[0], a.ScaleValues()[0] * 0.03);
        Assert.AreEqual(a.ZeroPointValues()[0], b.ZeroPointValues()[0], 3);
    }

    [TestMethod]
    public void Percentile_CutsTheRequestedTails()
    {
        using var data = linspace(0, 1, 100_001);
        using var observer = new PercentileObserver(QuantSpec.UInt8PerTensorAffineActivations, percentile: 99);
        observer.Observe(data);
        using var q = observer.ComputeQParams();
        // Central 99 %: [0.005, 0.995]; the range is widened to include 0, so the top bound sets the scale.
        var top = (255 - q.ZeroPointValues()[0]) * q.ScaleValues()[0];
        Assert.AreEqual(0.995, top, 0.005);
    }

    [TestMethod]
    public void Percentile_Symmetric_UsesTheLargerMagnitude()
    {
        using var data = cat(new[] { linspace(-1, 0, 10_001), linspace(0, 3, 10_001) });
        using var observer = new PercentileObserver(new QuantSpec(QuantDtype.Int, 8, QuantScheme.PerTensorSymmetric), 100);
        observer.Observe(data);
        using var q = observer.ComputeQParams();
        Assert.AreEqual(3f / 127.5f, q.ScaleValues()[0], 1e-4);
        Assert.AreEqual(0L, q.ZeroPointValues()[0]);
    }

    private static double QuantizationMse(Tensor data, QParams q)
    {
        using var y = FakeQuantize.Apply(data, q);
        return y.sub(data).pow(CachedScalars.Of(2)).mean().item<float>();
    }
}
