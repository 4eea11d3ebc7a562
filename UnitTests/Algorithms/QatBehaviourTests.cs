using MLNetQuant.Algorithms;
using MLNetQuant.Core;
using MLNetQuant.UnitTests.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNetQuant.UnitTests.Algorithms;

/// <summary>QAT's defining behaviour, including the NNI unit-test vectors of nni-algorithms.md §4.3. NNI's "int" grid is
/// the narrow [−127, 127] and its "uint" the full [0, 255]; those are the NNI-compatible settings used here.</summary>
[TestClass]
public sealed class QatBehaviourTests
{
    private static readonly QuantContext TrainStep1 = new(Training: true, Calibrating: false, Step: 1);
    private static readonly QuantSpec UInt8Affine = new(QuantDtype.UInt, 8, QuantScheme.PerTensorAffine);

    private static (float Scale, long ZeroPoint) WeightQParams(float[] values, long[] shape, QuantSpec spec, int channel = 0)
    {
        using var quantizer = new MinMaxWeightQuantizer(spec);
        using var w = tensor(values, shape);
        quantizer.Quantize(w, TrainStep1).Dispose();
        using var q = quantizer.CurrentQParams()!;
        return (q.ScaleValues()[channel], q.ZeroPointValues()[channel]);
    }

    [TestMethod]
    public void NniVector_WeightScaleAndZeroPoint()
    {
        var (s1, z1) = WeightQParams(new float[] { 1, 2, 3, 5 }, new long[] { 2, 2 }, UInt8Affine);
        Assert.AreEqual(5f / 255, s1, 1e-7);
        Assert.AreEqual(0, z1);
        var (s2, z2) = WeightQParams(new float[] { -1, 2, 3, 5 }, new long[] { 2, 2 }, UInt8Affine);
        Assert.AreEqual(6f / 255, s2, 1e-7);
        Assert.AreEqual(42, z2, "0 − round(−42.5) with round half to even");
    }

    [TestMethod]
    public void NniVector_InputScale()
    {
        using var quantizer = new EmaActivationQuantizer(QuantType.Input, UInt8Affine, quantStartStep: 0);
        using var x = tensor(new float[] { 1, 4, 2, 1 }, 2, 2);
        quantizer.Quantize(x, TrainStep1).Dispose();
        using var q = quantizer.CurrentQParams()!;
        Assert.AreEqual(4f / 255, q.ScaleValues()[0], 1e-7);
        Assert.AreEqual(0, q.ZeroPointValues()[0]);
    }

    [TestMethod]
    public void NniVector_FakeQuantizedWeight()
    {
        using var quantizer = new MinMaxWeightQuantizer(UInt8Affine);
        using var w = tensor(new[] { 1.1287f, 2.3456f, 3.7814f, 5.9723f }, 2, 2);
        using var q = quantizer.Quantize(w, TrainStep1);
        var expected = new[] { 1.1242f, 2.3421f, 3.7707f, 5.9723f };
        var actual = TestData.Values(q);
        for (var i = 0; i < 4; i++) Assert.AreEqual(expected[i], actual[i], expected[i] * 1e-4, $"element {i}");
    }

    [TestMethod]
    public void NniVector_MovingAverageOfActivationRanges()
    {
        using var quantizer = new EmaActivationQuantizer(QuantType.Output, UInt8Affine, quantStartStep: 0);
        using var relu = nn.functional.relu(tensor(new[] { -0.2f, 0f, 0.1f, 0.2f }, 2, 2));
        quantizer.Quantize(relu, TrainStep1).Dispose();
        Assert.AreEqual(0f, quantizer.Tracked!.Value.Min.item<float>(), 1e-7);
        Assert.AreEqual(0.2f, quantizer.Tracked!.Value.Max.item<float>(), 1e-7);
        using var next = tensor(new[] { 0.2f, 0.4f, 0.6f, 0.8f }, 2, 2);
        quantizer.Quantize(next, TrainStep1 with { Step = 2 }).Dispose();
        Assert.AreEqual(0.002f, quantizer.Tracked!.Value.Min.item<float>(), 1e-6);
        Assert.AreEqual(0.206f, quantizer.Tracked!.Value.Max.item<float>(), 1e-6);
    }

    // NNI §4.3 matrix: weight 1..18 as [2,1,3,3] (channel maxima 9 and 18), input 0..15 as [1,1,4,4].
    [TestMethod]
    [DataRow(QuantScheme.PerChannelSymmetric, QuantDtype.Int, 9f / 127, 18f / 127, 0L, 15f / 127, 0L)]
    [DataRow(QuantScheme.PerChannelSymmetric, QuantDtype.UInt, 9f / 127.5f, 18f / 127.5f, 128L, 15f / 127.5f, 128L)]
    [DataRow(QuantScheme.PerTensorSymmetric, QuantDtype.Int, 18f / 127, 18f / 127, 0L, 15f / 127, 0L)]
    [DataRow(QuantScheme.PerTensorSymmetric, QuantDtype.UInt, 18f / 127.5f, 18f / 127.5f, 128L, 15f / 127.5f, 128L)]
    [DataRow(QuantScheme.PerChannelAffine, QuantDtype.Int, 9f / 254, 18f / 254, -127L, 15f / 254, -127L)]
    [DataRow(QuantScheme.PerChannelAffine, QuantDtype.UInt, 9f / 255, 18f / 255, 0L, 15f / 255, 0L)]
    [DataRow(QuantScheme.PerTensorAffine, QuantDtype.Int, 18f / 254, 18f / 254, -127L, 15f / 254, -127L)]
    [DataRow(QuantScheme.PerTensorAffine, QuantDtype.UInt, 18f / 255, 18f / 255, 0L, 15f / 255, 0L)]
    public void NniVector_SchemeAndDtypeMatrix(QuantScheme scheme, QuantDtype dtype, float weightScale0, float weightScale1,
        long zeroPoint, float inputScale, long inputZeroPoint)
    {
        // Symmetric uint: the zero-point is the grid middle 128 (PyTorch, NNI 3); NNI v2 uses 127 — documented.
        var kind = dtype == QuantDtype.Int ? QuantRangeKind.Narrow : QuantRangeKind.Full;
        var weightSpec = new QuantSpec(dtype, 8, scheme, kind, channelAxis: 0);
        var weight = Enumerable.Range(1, 18).Select(v => (float)v).ToArray();
        var (s0, z0) = WeightQParams(weight, new long[] { 2, 1, 3, 3 }, weightSpec, channel: 0);
        var (s1, z1) = WeightQParams(weight, new long[] { 2, 1, 3, 3 }, weightSpec, channel: scheme.IsPerChannel() ? 1 : 0);
        Assert.AreEqual(weightScale0, s0, 1e-6);
        Assert.AreEqual(weightScale1, s1, 1e-6);
        Assert.AreEqual(zeroPoint, z0);
        Assert.AreEqual(zeroPoint, z1);

        using var quantizer = new EmaActivationQuantizer(QuantType.Input, new QuantSpec(dtype, 8, scheme, kind, channelAxis: 1), 0);
        using var input = arange(0, 16, dtype: ScalarType.Float32).reshape(1, 1, 4, 4);
        quantizer.Quantize(input, TrainStep1).Dispose();
        using var q = quantizer.CurrentQParams()!;
        Assert.AreEqual(inputScale, q.ScaleValues()[0], 1e-6);
        Assert.AreEqual(inputZeroPoint, q.ZeroPointValues()[0]);
    }

    [TestMethod]
    public void BeforeQuantStartStep_TensorPassesWithItsPlainGradient()
    {
        using var quantizer = new EmaActivationQuantizer(QuantType.Output, UInt8Affine, quantStartStep: 3);
        using var x = tensor(new[] { -1f, 0.3f, 2f, 5f }).requires_grad_(true);
        using var early = quantizer.Quantize(x, TrainStep1);
        early.sum().backward();
        CollectionAssert.AreEqual(TestData.Values(x), TestData.Values(early), "no quantization before the start step");
        CollectionAssert.AreEqual(new[] { 1f, 1f, 1f, 1f }, TestData.Values(x.grad!),
            "NNI v2 zeroes these gradients (division by a zero scale); we pass them");

        using var late = quantizer.Quantize(x, TrainStep1 with { Step = 3 });
        Assert.IsFalse(late.allclose(x), "quantized from the start step on");
    }

    [TestMethod]
    public void Evaluation_BeforeAnyTraining_PassesThroughInsteadOfDividingByZero()
    {
        using var quantizer = new EmaActivationQuantizer(QuantType.Input, UInt8Affine, quantStartStep: 0);
        using var x = tensor(new[] { 0.5f, 1.5f });
        using var y = quantizer.Quantize(x, new QuantContext(Training: false, Calibrating: false, Step: 1));
        CollectionAssert.AreEqual(TestData.Values(x), TestData.Values(y));
    }

    [TestMethod]
    public void ConstantZeroWeight_GetsAFiniteScale_NotNaN()
    {
        using var quantizer = new MinMaxWeightQuantizer(QuantSpec.Int8PerChannelSymmetricWeights);
        using var w = zeros(3, 2);
        using var q = quantizer.Quantize(w, TrainStep1);
        Assert.IsTrue(q.isfinite().all().item<bool>());
        using var p = quantizer.CurrentQParams()!;
        Assert.IsTrue(p.ScaleValues().All(s => s == QParamsCalculator.Eps));
    }
}
