using MLNetQuant.Core;
using MLNetQuant.Core.Observers;
using static TorchSharp.torch;

namespace MLNetQuant.UnitTests.Core;

/// <summary>Entropy (KL) calibration clips rare outliers and keeps a range that the data fills.</summary>
[TestClass]
public sealed class EntropyObserverTests
{
    [TestMethod]
    public void RareOutliers_AreClipped()
    {
        manual_seed(1);
        using var observer = new EntropyObserver(QuantSpec.UInt8PerTensorAffineActivations);
        using var bulk = randn(20_000).abs();
        using var outliers = full(5, 50f);
        observer.Observe(cat(new[] { bulk, outliers }));
        using var q = observer.ComputeQParams();
        var max = q.ScaleValues()[0] * (255 - q.ZeroPointValues()[0]);
        Assert.IsLessThan(12f, max, "five values at 50 among 20,000 |N(0,1)| do not set the range");
        Assert.IsGreaterThan(2f, max, "but the bulk of the distribution is kept");
    }

    [TestMethod]
    public void UniformData_KeepsNearlyTheWholeRange()
    {
        manual_seed(2);
        using var observer = new EntropyObserver(QuantSpec.UInt8PerTensorAffineActivations);
        observer.Observe(rand(50_000));
        using var q = observer.ComputeQParams();
        var max = q.ScaleValues()[0] * (255 - q.ZeroPointValues()[0]);
        Assert.IsGreaterThan(0.9f, max);
        Assert.IsLessThanOrEqualTo(1.01f, max);
    }

    [TestMethod]
    public void PerChannelSpec_IsRefused() =>
        Assert.ThrowsExactly<ArgumentException>(() => new EntropyObserver(QuantSpec.Int8PerChannelSymmetricWeights));
}
