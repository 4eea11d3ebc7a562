using MLNetQuant.Core;
using MLNetQuant.Core.Observers;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNetQuant.UnitTests.Core;

/// <summary>TorchSharp loads (the native fix works) and gradients flow through the fake-quant functions.</summary>
[TestClass]
public sealed class FakeQuantizeAutogradTests
{
    [TestMethod]
    public void TorchSharp_LoadsAndComputes()
    {
        using var x = arange(1, 5, dtype: ScalarType.Float32);
        Assert.AreEqual(10f, x.sum().item<float>());
        Assert.IsFalse(string.IsNullOrEmpty(__version__), "libtorch reports its version");
    }

    [TestMethod]
    public void BackwardThroughFakeQuantizedLinearLayer_ReachesTheLatentWeight_MaskedOutsideTheGrid()
    {
        manual_seed(7);
        using var scope = NewDisposeScope();
        var weight = randn(3, 4).requires_grad_(true);
        var input = randn(8, 4);
        // Per-channel int8 symmetric weights, with channel 0 given a scale so small that most of it saturates.
        var scale = tensor(new[] { 0.001f, 0.05f, 0.05f });
        var zeroPoint = zeros(3, dtype: ScalarType.Int64);
        var quantizedWeight = FakeQuantize.PerChannel(weight, scale, zeroPoint, axis: 0, qMin: -128, qMax: 127);
        var output = nn.functional.linear(input, quantizedWeight);
        output.sum().backward();

        var grad = weight.grad!;
        var expectedFull = input.sum(dim: 0);                // d(sum(x Wᵀ))/dW[j, k] = Σ_batch x[b, k]
        var levels = weight.detach().mul(scale.reciprocal().unsqueeze(1)).round();
        var inRange = levels.ge(-128).logical_and(levels.le(127));
        var expected = where(inRange, expectedFull.expand(3, 4), zeros(3, 4));
        Assert.IsTrue(grad.allclose(expected, rtol: 1e-5, atol: 1e-6), "straight-through gradient masked by range");
        Assert.IsTrue(inRange[0].logical_not().any().item<bool>(), "the test must exercise the mask");
        Assert.IsTrue(inRange[1].all().item<bool>());
    }

    [TestMethod]
    public void FakeQuantize_ValuesLieOnTheGrid()
    {
        manual_seed(3);
        using var x = randn(1000).mul(CachedScalars.Of(3));
        using var observer = new MinMaxObserver(QuantSpec.UInt8PerTensorAffineActivations);
        observer.Observe(x);
        using var q = observer.ComputeQParams();
        using var y = FakeQuantize.Apply(x, q);
        var s = q.ScaleValues()[0];
        var z = q.ZeroPointValues()[0];
        using var levels = y.div(s).add(z, CachedScalars.One);
        Assert.IsTrue(levels.sub(levels.round()).abs().max().item<float>() < 1e-3, "every value is an integer level");
        Assert.IsTrue(levels.min().item<float>() >= -0.001 && levels.max().item<float>() <= 255.001);
        Assert.IsTrue(y.sub(x).abs().max().item<float>() <= s / 2 + 1e-6, "error within half a step inside the range");
    }

    [TestMethod]
    public void LearnablePerChannel_EqualsPerTensorAppliedToEachChannel()
    {
        manual_seed(11);
        const long qMin = -8, qMax = 7;
        using var scope = NewDisposeScope();
        var x = randn(3, 10).mul(CachedScalars.Of(2)).requires_grad_(true);
        var scale = tensor(new[] { 0.1f, 0.3f, 0.05f }).requires_grad_(true);
        var zeroPoint = tensor(new[] { 0f, 1f, -2f }).requires_grad_(true);
        var gradFactor = LearnableFakeQuantize.GradFactor(x.numel(), qMax);
        var y = LearnableFakeQuantize.Apply(x, scale, zeroPoint, qMin, qMax, gradFactor, axis: 0);
        var upstream = randn(3, 10);
        y.backward(new[] { upstream });

        for (var c = 0; c < 3; c++)
        {
            var xc = x.detach()[c].clone().requires_grad_(true);
            var sc = scale.detach()[c].reshape(1).clone().requires_grad_(true);
            var zc = zeroPoint.detach()[c].reshape(1).clone().requires_grad_(true);
            var yc = LearnableFakeQuantize.Apply(xc, sc, zc, qMin, qMax, gradFactor);
            yc.backward(new[] { upstream[c] });
            Assert.IsTrue(Same(yc, y.detach()[c]), $"channel {c} forward");
            Assert.IsTrue(Same(xc.grad!, x.grad![c]), $"channel {c} input gradient");
            Assert.AreEqual(sc.grad!.item<float>(), scale.grad![c].item<float>(), 1e-6, $"channel {c} scale gradient");
            Assert.AreEqual(zc.grad!.item<float>(), zeroPoint.grad![c].item<float>(), 1e-6, $"channel {c} zp gradient");
        }
        Assert.IsTrue(scale.grad!.abs().sum().item<float>() > 0, "the scale learns");
    }

    [TestMethod]
    public void LearnableScale_GradientDescent_ReducesQuantizationError()
    {
        manual_seed(5);
        using var scope = NewDisposeScope();
        var x = randn(2000);
        var scale = tensor(new[] { 1.0f }).requires_grad_(true);     // far too coarse for a unit normal at 4 bits
        var zeroPoint = zeros(1);
        var gradFactor = LearnableFakeQuantize.GradFactor(x.numel(), 7);
        float Error() => LearnableFakeQuantize.Apply(x, scale, zeroPoint, -8, 7, gradFactor).sub(x).pow(CachedScalars.Of(2)).mean().item<float>();
        var before = Error();
        for (var step = 0; step < 200; step++)
        {
            scale.grad?.zero_();
            LearnableFakeQuantize.Apply(x, scale, zeroPoint, -8, 7, gradFactor).sub(x).pow(CachedScalars.Of(2)).mean().backward();
            using (no_grad()) scale.sub_(scale.grad!.mul(CachedScalars.Of(50)));
        }
        var after = Error();
        Assert.IsLessThan(before * 0.5, after, $"MSE {before} -> {after}, scale {scale.item<float>()}");
    }

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    [TestMethod]
    public void FakeQuantize_GivesIdenticalResultsOnEveryAvailableDevice()
    {
        manual_seed(9);
        using var x = randn(64, 8).mul(CachedScalars.Of(4));
        using var scale = rand(8).add(CachedScalars.Of(0.01f), CachedScalars.One);
        using var zeroPoint = randint(-20, 20, 8, dtype: ScalarType.Int64);
        using var reference = FakeQuantize.PerChannel(x, scale, zeroPoint, 1, -128, 127);
        var devices = new List<Device> { CPU };
        if (cuda.is_available()) devices.Add(CUDA);
        foreach (var device in devices)
        {
            using var y = FakeQuantize.PerChannel(x.to(device), scale.to(device), zeroPoint.to(device), 1, -128, 127);
            Assert.IsTrue(Same(y.cpu(), reference), $"fake-quant on {device} differs from CPU");
        }
    }
}
