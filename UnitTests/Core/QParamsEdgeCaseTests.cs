using MLNetQuant.Core;
using MLNetQuant.Core.Observers;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNetQuant.UnitTests.Core;

/// <summary>Degenerate and invalid input: finite parameters for all-zero and constant data, clear exceptions otherwise.</summary>
[TestClass]
public sealed class QParamsEdgeCaseTests
{
    private static readonly QuantScheme[] PerTensorSchemes = { QuantScheme.PerTensorAffine, QuantScheme.PerTensorSymmetric };

    public static IEnumerable<object[]> DegenerateTensors()
    {
        foreach (var dtype in new[] { QuantDtype.Int, QuantDtype.UInt })
        foreach (var scheme in PerTensorSchemes)
        foreach (var value in new[] { 0f, 3.25f, -7.5f, 1e-30f })
            yield return new object[] { dtype, scheme, value };
    }

    [TestMethod]
    [DynamicData(nameof(DegenerateTensors))]
    public void ConstantTensor_GivesFiniteQParamsAndFiniteOutput(QuantDtype dtype, QuantScheme scheme, float value)
    {
        var spec = new QuantSpec(dtype, 8, scheme);
        using var x = full(new long[] { 4, 5 }, value);
        using var observer = new MinMaxObserver(spec);
        observer.Observe(x);
        using var q = observer.ComputeQParams();
        var scale = q.ScaleValues()[0];
        Assert.IsTrue(float.IsFinite(scale) && scale >= QParamsCalculator.Eps, $"scale {scale}");
        Assert.IsTrue(q.ZeroPointValues()[0] >= spec.Range.QMin && q.ZeroPointValues()[0] <= spec.Range.QMax);
        using var y = FakeQuantize.Apply(x, q);
        var values = y.data<float>().ToArray();
        Assert.IsTrue(values.All(float.IsFinite), "fake-quantized output must be finite");
        // The range always contains the constant and 0, so the constant is represented to within one step.
        Assert.IsTrue(values.All(v => Math.Abs(v - value) <= scale), $"{values[0]} vs {value}, scale {scale}");
    }

    [TestMethod]
    public void AllZeroTensor_ScaleIsEpsAndZeroPointIsQMin()
    {
        using var q = QParamsCalculator.FromMinMax(0f, 0f, QuantSpec.UInt8PerTensorAffineActivations);
        Assert.AreEqual(QParamsCalculator.Eps, q.ScaleValues()[0]);
        Assert.AreEqual(0L, q.ZeroPointValues()[0]);
    }

    [TestMethod]
    public void PerChannel_AllZeroChannel_GetsEpsScaleOthersUnaffected()
    {
        var spec = QuantSpec.Int8PerChannelSymmetricWeights;
        using var w = stack(new[] { zeros(3, 3), ones(3, 3).mul(CachedScalars.Of(2.55f)) });
        using var observer = new PerChannelMinMaxObserver(spec);
        observer.Observe(w);
        using var q = observer.ComputeQParams();
        CollectionAssert.AreEqual(new[] { QParamsCalculator.Eps, 2.55f / 127.5f }, q.ScaleValues());
        using var y = FakeQuantize.Apply(w, q);
        Assert.IsTrue(y.data<float>().ToArray().All(float.IsFinite));
    }

    [TestMethod]
    [DataRow(float.NaN, "NaN")]
    [DataRow(float.PositiveInfinity, "infinite")]
    [DataRow(float.NegativeInfinity, "infinite")]
    public void Observe_NonFiniteInput_ThrowsAndSaysWhich(float bad, string word)
    {
        var spec = QuantSpec.UInt8PerTensorAffineActivations;
        var observers = new QuantObserver[]
        {
            new MinMaxObserver(spec), new MovingAverageMinMaxObserver(spec), new HistogramObserver(spec),
            new PercentileObserver(spec),
            new PerChannelMinMaxObserver(QuantSpec.Int8PerChannelSymmetricWeights),
            new MovingAveragePerChannelMinMaxObserver(QuantSpec.Int8PerChannelSymmetricWeights),
        };
        foreach (var observer in observers)
        {
            using var x = randn(4, 6);
            x[1, 2] = tensor(bad);
            var e = Assert.ThrowsExactly<ArgumentException>(() => observer.Observe(x), observer.GetType().Name);
            StringAssert.Contains(e.Message, word, observer.GetType().Name);
            Assert.AreEqual("x", e.ParamName);
            observer.Dispose();
        }
    }

    [TestMethod]
    public void FromMinMax_MinAboveMax_NamesMinVal()
    {
        var e = Assert.ThrowsExactly<ArgumentException>(() =>
            QParamsCalculator.FromMinMax(2f, 1f, QuantSpec.UInt8PerTensorAffineActivations));
        Assert.AreEqual("minVal", e.ParamName);
    }

    [TestMethod]
    public void FromMinMax_PerChannelOneChannelInverted_NamesMinVal()
    {
        using var min = tensor(new[] { -1f, 3f });
        using var max = tensor(new[] { 1f, 2f });
        var e = Assert.ThrowsExactly<ArgumentException>(() =>
            QParamsCalculator.FromMinMax(min, max, QuantSpec.Int8PerChannelSymmetricWeights));
        Assert.AreEqual("minVal", e.ParamName);
    }

    [TestMethod]
    public void FromMinMax_NaNBound_SaysNaN()
    {
        var e = Assert.ThrowsExactly<ArgumentException>(() =>
            QParamsCalculator.FromMinMax(float.NaN, 1f, QuantSpec.UInt8PerTensorAffineActivations));
        StringAssert.Contains(e.Message, "NaN");
        Assert.AreEqual("minVal", e.ParamName);
    }

    [TestMethod]
    public void PerChannelObserver_AxisBeyondTensorRank_NamesChannelAxis()
    {
        var spec = new QuantSpec(QuantDtype.Int, 8, QuantScheme.PerChannelSymmetric, channelAxis: 3);
        using var observer = new PerChannelMinMaxObserver(spec);
        using var x = randn(4, 5);
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => observer.Observe(x));
        Assert.AreEqual("channelAxis", e.ParamName);
    }

    [TestMethod]
    public void FakeQuantizePerChannel_AxisOutOfRange_NamesAxis()
    {
        using var x = randn(4, 5);
        using var scale = ones(4);
        using var zeroPoint = zeros(4, dtype: ScalarType.Int64);
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            FakeQuantize.PerChannel(x, scale, zeroPoint, axis: 2, qMin: -128, qMax: 127));
        Assert.AreEqual("axis", e.ParamName);
    }

    [TestMethod]
    public void FakeQuantizePerChannel_WrongNumberOfScales_NamesScale()
    {
        using var x = randn(4, 5);
        using var scale = ones(5);
        using var zeroPoint = zeros(5, dtype: ScalarType.Int64);
        var e = Assert.ThrowsExactly<ArgumentException>(() =>
            FakeQuantize.PerChannel(x, scale, zeroPoint, axis: 0, qMin: -128, qMax: 127));
        Assert.AreEqual("scale", e.ParamName);
    }

    [TestMethod]
    [DataRow(0f)]
    [DataRow(-0.1f)]
    [DataRow(float.NaN)]
    [DataRow(float.PositiveInfinity)]
    public void FakeQuantizePerTensor_BadScale_NamesScale(float scale)
    {
        using var x = randn(3);
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => FakeQuantize.PerTensor(x, scale, 0, -128, 127));
        Assert.AreEqual("scale", e.ParamName);
    }

    [TestMethod]
    public void FakeQuantizePerTensor_ZeroPointOutsideRange_NamesZeroPoint()
    {
        using var x = randn(3);
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => FakeQuantize.PerTensor(x, 0.1f, 300, 0, 255));
        Assert.AreEqual("zeroPoint", e.ParamName);
    }

    [TestMethod]
    public void FakeQuantize_IntegerInput_IsRefused()
    {
        using var x = ones(3, dtype: ScalarType.Int32);
        var e = Assert.ThrowsExactly<ArgumentException>(() => FakeQuantize.PerTensor(x, 0.1f, 0, -128, 127));
        Assert.AreEqual("x", e.ParamName);
    }

    [TestMethod]
    public void ComputeQParams_BeforeAnyData_ExplainsWhatToDo()
    {
        using var observer = new MinMaxObserver(QuantSpec.UInt8PerTensorAffineActivations);
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => observer.ComputeQParams());
        StringAssert.Contains(e.Message, "Observe");
    }

    [TestMethod]
    public void Observers_RefuseTheWrongGranularity()
    {
        Assert.AreEqual("spec", Assert.ThrowsExactly<ArgumentException>(() =>
            new MinMaxObserver(QuantSpec.Int8PerChannelSymmetricWeights)).ParamName);
        Assert.AreEqual("spec", Assert.ThrowsExactly<ArgumentException>(() =>
            new PerChannelMinMaxObserver(QuantSpec.UInt8PerTensorAffineActivations)).ParamName);
        Assert.AreEqual("spec", Assert.ThrowsExactly<ArgumentException>(() =>
            new HistogramObserver(QuantSpec.Int8PerChannelSymmetricWeights)).ParamName);
    }

    [TestMethod]
    public void Observers_BadSettings_NameTheSetting()
    {
        var spec = QuantSpec.UInt8PerTensorAffineActivations;
        Assert.AreEqual("averagingConstant", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            new MovingAverageMinMaxObserver(spec, 0)).ParamName);
        Assert.AreEqual("averagingConstant", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            new MovingAverageMinMaxObserver(spec, 1.5)).ParamName);
        Assert.AreEqual("percentile", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            new PercentileObserver(spec, 0)).ParamName);
        Assert.AreEqual("bins", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            new HistogramObserver(spec, 1)).ParamName);
    }

    [TestMethod]
    public void Observe_EmptyTensor_IsIgnored()
    {
        using var observer = new MinMaxObserver(QuantSpec.UInt8PerTensorAffineActivations);
        observer.Observe(empty(0, 3));
        Assert.AreEqual(0, observer.ObservedBatches);
        observer.Observe(tensor(new[] { -1f, 2f }));
        Assert.AreEqual(1, observer.ObservedBatches);
    }

    [TestMethod]
    public void PerChannelObserver_ChannelCountChange_IsRefused()
    {
        using var observer = new PerChannelMinMaxObserver(QuantSpec.Int8PerChannelSymmetricWeights);
        observer.Observe(randn(4, 3));
        Assert.ThrowsExactly<ArgumentException>(() => observer.Observe(randn(5, 3)));
    }
}
