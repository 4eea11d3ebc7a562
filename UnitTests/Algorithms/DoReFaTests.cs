using MLNetQuant.Algorithms;
using MLNetQuant.Configuration;
using MLNetQuant.Core;
using MLNetQuant.UnitTests.Training;
using static TorchSharp.torch;

namespace MLNetQuant.UnitTests.Algorithms;

/// <summary>DoReFa: the tanh weight transform on the (2i − n)/n grid, and k-bit activations in [0, 1].</summary>
[TestClass]
public sealed class DoReFaTests
{
    private static readonly QuantContext Train = new(true, false, 1);

    [TestMethod]
    [DataRow(1)]
    [DataRow(2)]
    [DataRow(4)]
    public void Weights_LieOnTheTanhGrid_AndAreDifferentiatedThroughTanh(int bits)
    {
        var quantizer = new DoReFaWeightQuantizer(new QuantSpec(QuantDtype.Int, bits, QuantScheme.PerTensorSymmetric));
        manual_seed(3);
        using var w = randn(64).requires_grad_(true);
        using var q = quantizer.Quantize(w, Train);
        var n = (1 << bits) - 1;
        using (no_grad())
        {
            var t = w.tanh();
            var u = t.div(t.abs().max().mul(CachedScalars.Of(2))).add(CachedScalars.Of(0.5), CachedScalars.One);
            var expected = u.mul(CachedScalars.Of(n)).round().div(CachedScalars.Of(n)).mul(CachedScalars.Of(2)).sub(CachedScalars.Of(1));
            CollectionAssert.AreEqual(TestData.Values(expected), TestData.Values(q), "2·round(u·n)/n − 1");
        }
        foreach (var v in TestData.Values(q))
        {
            var level = (v + 1) / 2 * n;
            Assert.AreEqual(Math.Round(level), level, 1e-4, "on the k-bit grid");
        }
        if (bits == 1) CollectionAssert.IsSubsetOf(TestData.Values(q).Distinct().ToArray(), new[] { -1f, 1f });

        q.sum().backward();
        var grad = TestData.Values(w.grad!);
        Assert.IsTrue(grad.All(float.IsFinite));
        Assert.IsTrue(grad.Any(g => Math.Abs(g - 1) > 1e-3), "tanh and the normalisation are differentiated (NNI v2 passes 1)");
        using var grid = quantizer.CurrentQParams();
        Assert.AreEqual(1f / n, grid.ScaleValues()[0], 1e-7);
    }

    [TestMethod]
    public void Activations_AreClampedToUnitRange_OnTheKBitGrid_WithGradientOnlyInside()
    {
        var quantizer = new DoReFaActivationQuantizer(QuantType.Output, new QuantSpec(QuantDtype.UInt, 2, QuantScheme.PerTensorAffine));
        using var x = tensor(new[] { -0.5f, 0.1f, 0.5f, 0.9f, 1.7f }).requires_grad_(true);
        using var y = quantizer.Quantize(x, Train);
        CollectionAssert.AreEqual(new[] { 0f, 0f, 2f / 3, 1f, 1f }, TestData.Values(y));
        y.sum().backward();
        CollectionAssert.AreEqual(new[] { 0f, 1f, 1f, 1f, 0f }, TestData.Values(x.grad!));
    }

    [TestMethod]
    public void InputQuantization_IsRejectedUpFront()
    {
        var e = Assert.ThrowsExactly<QuantConfigException>(() => QuantConfigResolver.Validate(
            new[] { new QuantConfig { QuantTypes = { QuantType.Input }, QuantBits = 4, OpTypes = { "Conv2d" } } },
            QuantAlgorithmRules.DoReFa));
        StringAssert.Contains(e.Message, "config[0].quant_types");
    }
}
