using Microsoft.ML;
using MLNetQuant.Configuration;
using MLNetQuant.Core;
using MLNetQuant.Training;
using MLNetQuant.UnitTests.Training;
using static TorchSharp.torch;

namespace MLNetQuant.UnitTests.Algorithms;

/// <summary>Observer: post-training calibration with selectable observers, 2–8 bits, no gradient, no training.</summary>
[TestClass]
public sealed class ObserverTests
{
    private static ObserverOptions Options(CalibrationMethod method, int bits = 8) => new()
    {
        Model = TestData.SeededTinyCnn(1), InputShape = TestData.InputShape, Device = QuantDevice.Cpu, Calibration = method,
        Config = { new QuantConfig { QuantTypes = { QuantType.Weight, QuantType.Input }, QuantBits = bits, OpTypes = { "Conv2d", "Linear" } } },
    };

    [TestMethod]
    public void MinMax_FirstLayerInputRange_IsTheCalibrationDataRange()
    {
        var ml = new MLContext(seed: 1);
        var rows = TestData.QuadrantRows(200, seed: 9);
        var options = Options(CalibrationMethod.MinMax);
        options.CalibrationRows = 150;
        var before = TestData.State(options.Model!);
        CollectionAssert.IsSubsetOf(new[] { "1.running_mean", "1.running_var", "1.num_batches_tracked" },
            before.Select(s => s.Name).ToArray(), "the BN buffers are part of the check");
        var run = QuantizationRunner.Run(ml, options, ml.Data.LoadFromEnumerable(rows));

        var seen = rows.Take(150).SelectMany(r => r.Features).ToArray();
        using var expected = QParamsCalculator.FromMinMax(seen.Min(), seen.Max(), QuantSpec.UInt8PerTensorAffineActivations);
        using var actual = run.Network.Layers[0].CurrentQParams(QuantType.Input)!;
        Assert.AreEqual(expected.ScaleValues()[0], actual.ScaleValues()[0], 1e-7, "only the first 150 rows are read");
        Assert.AreEqual(expected.ZeroPointValues()[0], actual.ZeroPointValues()[0]);
        Assert.IsEmpty(run.History, "no training");
        TestData.AssertSameState(before, TestData.State(options.Model!), "weights and BN statistics untouched by calibration");
    }

    [TestMethod]
    public void Methods_ChooseDifferentRanges_PercentileClipsOutliers()
    {
        var ml = new MLContext(seed: 1);
        var rows = TestData.QuadrantRows(300, seed: 3);
        rows[7].Features[5] = 40f; // one outlier pixel
        var data = ml.Data.LoadFromEnumerable(rows);
        float Scale(CalibrationMethod method)
        {
            var options = Options(method);
            options.Percentile = 99.9; // keeps the central 99.9 %: 0.05 % (about 10 of 19,200 values) cut per tail
            var run = QuantizationRunner.Run(ml, options, data);
            using var q = run.Network.Layers[0].CurrentQParams(QuantType.Input)!;
            return q.ScaleValues()[0];
        }
        var minMax = Scale(CalibrationMethod.MinMax);
        var percentile = Scale(CalibrationMethod.Percentile);
        var histogram = Scale(CalibrationMethod.Histogram);
        Assert.IsGreaterThan(40f / 255, minMax * 1.0001f, "MinMax keeps the outlier");
        Assert.IsLessThan(minMax / 4, percentile, "the percentile range drops a single outlier");
        Assert.AreNotEqual(minMax, histogram);
    }

    [TestMethod]
    public void FourBits_IsAllowed_NineIsRejectedUpFront()
    {
        var ml = new MLContext(seed: 1);
        var run = QuantizationRunner.Run(ml, Options(CalibrationMethod.Histogram, bits: 4), TestData.Quadrants(ml, 64));
        using (var q = run.Network.Layers[0].CurrentQParams(QuantType.Input)!)
            Assert.AreEqual(15, q.Spec.Range.QMax);
        var e = Assert.ThrowsExactly<QuantConfigException>(() => QuantizationRunner.Run(ml, Options(CalibrationMethod.Histogram, bits: 9), TestData.Quadrants(ml, 64)));
        StringAssert.Contains(e.Message, "config[0].quant_bits");
    }

    [TestMethod]
    public void PerChannelActivations_WithAHistogram_AreRejectedBeforeCalibration()
    {
        var options = Options(CalibrationMethod.Histogram);
        options.Config[0] = new QuantConfig
        {
            QuantTypes = { QuantType.Input }, QuantBits = 8, OpTypes = { "Linear" }, QuantScheme = QuantScheme.PerChannelAffine,
        };
        var ml = new MLContext(seed: 1);
        var e = Assert.ThrowsExactly<QuantConfigException>(() => QuantizationRunner.Run(ml, options, TestData.Quadrants(ml, 64)));
        StringAssert.Contains(e.Message, "config[0].quant_scheme");
    }
}
