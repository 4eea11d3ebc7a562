using Microsoft.ML;
using Microsoft.ML.Data;
using MLNetQuant.Configuration;
using MLNetQuant.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNetQuant.UnitTests.Training;

/// <summary>The loop over IDataView: validation up front with the column, option, module or sub-config named;
/// progress, cancellation, determinism, label kinds.</summary>
[TestClass]
public sealed class QuantizationRunnerTests
{
    private static QatOptions Qat(int epochs = 1) => new()
    {
        ModelFactory = TestData.TinyCnn, InputShape = TestData.InputShape, Device = QuantDevice.Cpu, Epochs = epochs,
        LearningRate = 0.01,
    };

    private sealed class WrongSize
    {
        [VectorType(10)] public float[] Features { get; set; } = new float[10];
        public uint Label { get; set; }
    }

    private sealed class TextLabel
    {
        [VectorType(64)] public float[] Features { get; set; } = new float[64];
        public string Label { get; set; } = "a";
    }

    private sealed class FloatLabel
    {
        [VectorType(64)] public float[] Features { get; set; } = new float[64];
        public float Label { get; set; }
    }

    private sealed class IntLabel
    {
        [VectorType(64)] public float[] Features { get; set; } = new float[64];
        public int Label { get; set; }
    }

    private sealed class SynchronousProgress : IProgress<QuantizationProgress>
    {
        public List<QuantizationProgress> Reports { get; } = new();
        public Action<QuantizationProgress>? OnReport { get; set; }
        public void Report(QuantizationProgress value)
        {
            Reports.Add(value);
            OnReport?.Invoke(value);
        }
    }

    [TestMethod]
    public void MissingFeatureColumn_IsNamed()
    {
        var ml = new MLContext(1);
        var options = Qat();
        options.FeatureColumnName = "Pixels";
        var e = Assert.ThrowsExactly<ArgumentException>(() => QuantizationRunner.Run(ml, options, TestData.Quadrants(ml, 8)));
        StringAssert.Contains(e.Message, "'Pixels'");
    }

    [TestMethod]
    public void FeatureVectorOfTheWrongSize_NamesColumnAndInputShape()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(new[] { new WrongSize() });
        var e = Assert.ThrowsExactly<ArgumentException>(() => QuantizationRunner.Run(ml, Qat(), data));
        StringAssert.Contains(e.Message, "'Features'");
        StringAssert.Contains(e.Message, "InputShape");
    }

    [TestMethod]
    public void LabelOfAnUnusableType_IsNamed()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(new[] { new TextLabel() });
        var e = Assert.ThrowsExactly<ArgumentException>(() => QuantizationRunner.Run(ml, Qat(), data));
        StringAssert.Contains(e.Message, "'Label'");
    }

    // Training reads each epoch through ShuffleRows, so its row number is the position in that epoch's shuffled order
    // (docs/algorithms.md says so); calibration and evaluation read the data in order, so theirs is the row's index.
    private static int RowNumber(InvalidDataException e, int rows)
    {
        var match = System.Text.RegularExpressions.Regex.Match(e.Message, @"^Row (\d+): ");
        Assert.IsTrue(match.Success, $"the message starts with the row: {e.Message}");
        var row = int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.IsLessThan(rows, row, e.Message);
        return row;
    }

    [TestMethod]
    public void ClassOutsideTheModelOutputs_IsReportedWithItsRow()
    {
        var ml = new MLContext(1);
        var rows = TestData.QuadrantRows(10, 1);
        rows[6].Label = 9;
        var e = Assert.ThrowsExactly<InvalidDataException>(() => QuantizationRunner.Run(ml, Qat(), ml.Data.LoadFromEnumerable(rows)));
        StringAssert.Contains(e.Message, "label column 'Label' holds class 9, outside the model's 4 outputs");
        RowNumber(e, 10);
    }

    [TestMethod]
    public void NaNFeature_InTraining_IsReportedWithItsRowAndValue()
    {
        var ml = new MLContext(1);
        var rows = TestData.QuadrantRows(10, 1);
        rows[3].Features[17] = float.NaN;
        var e = Assert.ThrowsExactly<InvalidDataException>(() => QuantizationRunner.Run(ml, Qat(), ml.Data.LoadFromEnumerable(rows)));
        StringAssert.Contains(e.Message, "features column 'Features' holds NaN");
        RowNumber(e, 10);
    }

    [TestMethod]
    public void NaNFeature_InCalibrationData_IsReportedWithItsRowIndex()
    {
        var ml = new MLContext(1);
        var rows = TestData.QuadrantRows(10, 1);
        rows[6].Features[40] = float.NaN;
        var options = new ObserverOptions { Model = TestData.SeededTinyCnn(1), InputShape = TestData.InputShape, Device = QuantDevice.Cpu };
        var e = Assert.ThrowsExactly<InvalidDataException>(() => QuantizationRunner.Run(ml, options, ml.Data.LoadFromEnumerable(rows)));
        StringAssert.Contains(e.Message, "features column 'Features' holds NaN");
        Assert.AreEqual(6, RowNumber(e, 10), "calibration reads in order: the index of the row in the data");
    }

    [TestMethod]
    public void ClassOutsideTheModelOutputs_InEvaluationData_IsReportedWithItsRowIndex()
    {
        var ml = new MLContext(1);
        var options = Qat();
        var run = QuantizationRunner.Run(ml, options, TestData.Quadrants(ml, 64));
        var rows = TestData.QuadrantRows(100, 2);
        rows[71].Label = 4;
        var e = Assert.ThrowsExactly<InvalidDataException>(() => QuantizationRunner.Evaluate(ml, run, ml.Data.LoadFromEnumerable(rows), options));
        StringAssert.Contains(e.Message, "holds class 4, outside the model's 4 outputs");
        Assert.AreEqual(71, RowNumber(e, 100), "evaluation reads in order: the index of the row in the data");
    }

    [TestMethod]
    public void UnsupportedModule_FailsBeforeTraining_WithItsNameAndTheSupportedList()
    {
        var options = Qat();
        options.ModelFactory = () => nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.GELU(), nn.Linear(8, 4));
        var progress = new SynchronousProgress();
        options.Progress = progress;
        var ml = new MLContext(1);
        var e = Assert.ThrowsExactly<NotSupportedException>(() => QuantizationRunner.Run(ml, options, TestData.Quadrants(ml, 64)));
        StringAssert.Contains(e.Message, "'2'");
        StringAssert.Contains(e.Message, "Supported layers");
        Assert.IsEmpty(progress.Reports);
    }

    [TestMethod]
    public void InvalidConfig_FailsBeforeTheModelIsBuilt()
    {
        var built = false;
        var options = Qat();
        options.ModelFactory = () => { built = true; return TestData.TinyCnn(); };
        options.Config.Add(new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 40, OpTypes = { "Conv2d" } });
        var ml = new MLContext(1);
        var e = Assert.ThrowsExactly<QuantConfigException>(() => QuantizationRunner.Run(ml, options, TestData.Quadrants(ml, 64)));
        StringAssert.Contains(e.Message, "config[0].quant_bits");
        Assert.IsFalse(built);
    }

    [TestMethod]
    public void PerChannelGrid_OnATensorWithoutAChannelAxis_IsRejectedUpFront()
    {
        var ml = new MLContext(1);
        var options = Qat();
        options.ModelFactory = () => nn.Sequential(nn.Flatten(), nn.Linear(64, 1), nn.Flatten(0));
        options.Config.Add(new QuantConfig
        {
            QuantTypes = { QuantType.Output }, QuantBits = 8, OpNames = { "2" }, QuantScheme = QuantScheme.PerChannelAffine,
        });
        var rows = TestData.QuadrantRows(64, 1).Select(r => new FloatLabel { Features = r.Features, Label = r.Label });
        var e = Assert.ThrowsExactly<QuantConfigException>(() => QuantizationRunner.Run(ml, options, ml.Data.LoadFromEnumerable(rows)));
        StringAssert.Contains(e.Message, "config[0].quant_scheme");
        StringAssert.Contains(e.Message, "'2'");
    }

    [TestMethod]
    public void Lsq_PerChannelActivations_AreRejectedUpFront()
    {
        var ml = new MLContext(1);
        var options = new LsqOptions
        {
            ModelFactory = TestData.TinyCnn, InputShape = TestData.InputShape, Device = QuantDevice.Cpu,
            Config = { new QuantConfig { QuantTypes = { QuantType.Input }, QuantBits = 4, OpTypes = { "Linear" }, QuantScheme = QuantScheme.PerChannelSymmetric } },
        };
        var e = Assert.ThrowsExactly<QuantConfigException>(() => QuantizationRunner.Run(ml, options, TestData.Quadrants(ml, 64)));
        StringAssert.Contains(e.Message, "config[0].quant_scheme");
    }

    [TestMethod]
    public void InvalidOptions_NameTheOption()
    {
        var ml = new MLContext(1);
        var data = TestData.Quadrants(ml, 8);
        var epochs = Qat(epochs: 0);
        Assert.AreEqual("Epochs", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => QuantizationRunner.Run(ml, epochs, data)).ParamName);
        var both = Qat();
        both.Model = TestData.SeededTinyCnn(1);
        Assert.ThrowsExactly<ArgumentException>(() => QuantizationRunner.Run(ml, both, data));
        var shape = Qat();
        shape.InputShape = new long[] { 1, 0, 8 };
        Assert.AreEqual("InputShape", Assert.ThrowsExactly<ArgumentException>(() => QuantizationRunner.Run(ml, shape, data)).ParamName);
    }

    [TestMethod]
    public void UnmatchedSubConfig_IsAWarningInTheMLContextLog()
    {
        var ml = new MLContext(1);
        var log = new List<string>();
        ml.Log += (_, e) => { lock (log) log.Add(e.Message); };
        var options = Qat();
        options.Config.Add(new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 8, OpTypes = { "Conv2d" } });
        options.Config.Add(new QuantConfig { QuantTypes = { QuantType.Output }, QuantBits = 8, OpTypes = { "ReLU6" } });
        QuantizationRunner.Run(ml, options, TestData.Quadrants(ml, 64));
        lock (log) Assert.IsTrue(log.Any(m => m.Contains("config[1] matches no module")), string.Join("\n", log));
    }

    [TestMethod]
    public void Progress_GoesToTheCallbackAndTheLog_PerStepsAndPerEpoch_WithValidation()
    {
        var ml = new MLContext(1);
        var log = new List<string>();
        ml.Log += (_, e) => { lock (log) log.Add(e.Message); };
        var progress = new SynchronousProgress();
        var options = Qat(epochs: 2);
        options.LogEverySteps = 2;
        options.Progress = progress;
        options.ValidationData = TestData.Quadrants(ml, 64, seed: 2);
        var run = QuantizationRunner.Run(ml, options, TestData.Quadrants(ml, 256));

        Assert.HasCount(2, run.History);
        Assert.IsTrue(run.History.All(h => h.Validation is { Rows: 64 }));
        Assert.AreEqual(2 * (2 + 1), progress.Reports.Count(r => r.Phase == "train"), "steps 2 and 4, plus the epoch end, per epoch");
        Assert.AreEqual(2, progress.Reports.Count(r => r.Phase == "validate"));
        Assert.IsTrue(progress.Reports.All(r => r.Phase != "train" || r.ExamplesPerSecond > 0));
        lock (log) Assert.IsTrue(log.Any(m => m.Contains("train epoch 2/2 step 8")), string.Join("\n", log));
    }

    [TestMethod]
    public void Cancellation_StopsBetweenBatches()
    {
        var ml = new MLContext(1);
        using var cancel = new CancellationTokenSource();
        var progress = new SynchronousProgress { OnReport = _ => cancel.Cancel() };
        var options = Qat(epochs: 5);
        options.LogEverySteps = 1;
        options.Progress = progress;
        options.CancellationToken = cancel.Token;
        Assert.Throws<OperationCanceledException>(() => QuantizationRunner.Run(ml, options, TestData.Quadrants(ml, 512)));
        Assert.HasCount(1, progress.Reports, "nothing ran after the cancelling report");
    }

    [TestMethod]
    public void SameSeed_OnCpu_GivesIdenticalWeightsAndScales()
    {
        ((string Name, double[] Values)[] Weights, float[][] Scales) Once()
        {
            var ml = new MLContext(seed: 7);
            var options = Qat(epochs: 2);
            options.Config.Add(new QuantConfig { QuantTypes = { QuantType.Weight, QuantType.Input }, QuantBits = 8, OpTypes = { "default" } });
            options.Config.Add(new QuantConfig { QuantTypes = { QuantType.Output }, QuantBits = 8, OpTypes = { "ReLU" } });
            var run = QuantizationRunner.Run(ml, options, TestData.Quadrants(ml, 256));
            var weights = TestData.State(run.Network.Model);
            var scales = run.Network.Layers.SelectMany(l => l.QuantTypes.Select(t => l.CurrentQParams(t)!.ScaleValues())).ToArray();
            return (weights, scales);
        }
        var first = Once();
        var second = Once();
        CollectionAssert.Contains(first.Weights.Select(w => w.Name).ToArray(), "1.running_var", "BN statistics are compared too");
        TestData.AssertSameState(first.Weights, second.Weights, "parameters and buffers of two runs with one seed");
        Assert.HasCount(5, first.Scales, "conv weight+input, ReLU output, linear weight+input");
        for (var i = 0; i < first.Scales.Length; i++) CollectionAssert.AreEqual(first.Scales[i], second.Scales[i], $"scale {i}");
    }

    [TestMethod]
    public void LearningRateMilestones_ScaleTheRateAfterTheNamedEpochs()
    {
        var log = new List<string>();
        float[] Weights(int epochs, params int[] milestones)
        {
            var ml = new MLContext(seed: 7);
            ml.Log += (_, e) => { lock (log) log.Add(e.Message); };
            var options = Qat(epochs);
            options.LearningRateDecay = 1e-6;
            foreach (var m in milestones) options.LearningRateMilestones.Add(m);
            var run = QuantizationRunner.Run(ml, options, TestData.Quadrants(ml, 256));
            return run.Network.Model.parameters().SelectMany(p => TestData.Values(p)).ToArray();
        }
        static double Distance(float[] a, float[] b) => a.Zip(b).Max(p => Math.Abs(p.First - p.Second));
        var afterOne = Weights(1);
        var constant = Weights(2);
        var decayed = Weights(2, 1);
        Assert.IsGreaterThan(1e-3, Distance(afterOne, constant), "a second epoch at the full rate moves the weights");
        Assert.IsLessThan(1e-3 * Distance(afterOne, constant), Distance(afterOne, decayed), "a second epoch at a millionth of the rate barely does");
        lock (log) Assert.IsTrue(log.Any(m => m.Contains("learning rate 1E-08 from epoch 2")), string.Join("\n", log.Where(m => m.Contains("learning rate"))));

        var late = Qat(epochs: 3);
        late.LearningRateMilestones.Add(3);
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => QuantizationRunner.Run(new MLContext(1), late, TestData.Quadrants(new MLContext(1), 8)));
        Assert.AreEqual("LearningRateMilestones", e.ParamName);
        var growing = Qat(epochs: 2);
        growing.LearningRateDecay = 2;
        e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => QuantizationRunner.Run(new MLContext(1), growing, TestData.Quadrants(new MLContext(1), 8)));
        Assert.AreEqual("LearningRateDecay", e.ParamName);
    }

    [TestMethod]
    public void KeyIntAndFloatLabels_AreReadAsClassesOrRegressionTargets()
    {
        var ml = new MLContext(1);
        var rows = TestData.QuadrantRows(256, 5);
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(rows)).Transform(ml.Data.LoadFromEnumerable(rows));
        Assert.IsGreaterThan(0.7, QuantizationRunner.Run(ml, Qat(epochs: 2), keyed).History[^1].TrainAccuracy, "key labels");

        var ints = ml.Data.LoadFromEnumerable(rows.Select(r => new IntLabel { Features = r.Features, Label = (int)r.Label }));
        Assert.IsGreaterThan(0.7, QuantizationRunner.Run(ml, Qat(epochs: 2), ints).History[^1].TrainAccuracy, "int labels");

        var regression = Qat(epochs: 3);
        regression.ModelFactory = () => nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 1));
        var targets = ml.Data.LoadFromEnumerable(rows.Select(r => new FloatLabel { Features = r.Features, Label = r.Features.Take(32).Sum() / 32 }));
        var run = QuantizationRunner.Run(ml, regression, targets);
        Assert.IsFalse(run.IsClassification);
        Assert.IsTrue(double.IsNaN(run.History[0].TrainAccuracy));
        Assert.IsLessThan(run.History[0].TrainLoss, run.History[^1].TrainLoss, "MSE falls");
    }

    [TestMethod]
    public void Divergence_EndsWithAnException_NotANaNModel()
    {
        var ml = new MLContext(1);
        var options = Qat(epochs: 1);
        options.ModelFactory = () =>
        {
            var linear = nn.Linear(64, 4);
            using (no_grad()) linear.weight![0, 0] = float.PositiveInfinity; // one weight blows up: inf − inf = NaN
            return nn.Sequential(nn.Flatten(), linear);
        };
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => QuantizationRunner.Run(ml, options, TestData.Quadrants(ml, 256)));
        StringAssert.Contains(e.Message, "diverged");
    }

    [TestMethod]
    public void Evaluate_ReportsAccuracyOnNewData()
    {
        var ml = new MLContext(1);
        var options = Qat(epochs: 2);
        var run = QuantizationRunner.Run(ml, options, TestData.Quadrants(ml, 512));
        var metrics = QuantizationRunner.Evaluate(ml, run, TestData.Quadrants(ml, 200, seed: 99), options);
        Assert.AreEqual(200, metrics.Rows);
        Assert.IsGreaterThan(0.8, metrics.Accuracy);
    }
}
