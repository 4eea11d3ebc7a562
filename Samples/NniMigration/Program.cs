// Coming from NNI: the configurations of NNI's documented quantization examples (nni-algorithms.md §10), written with
// MLNetQuant. Each block names the NNI quantizer and config_list keys it corresponds to.
//
//   dotnet run --project Samples/NniMigration -c Release                  # 10,000 training rows, 1 epoch each
//   dotnet run --project Samples/NniMigration -c Release -- --train 60000 --epochs 3
using System.Globalization;
using Microsoft.ML;
using MLNetQuant;
using MLNetQuant.Configuration;
using MLNetQuant.Samples.NniMigration;
using MLNetQuant.Samples.Shared;
using MLNetQuant.Training;

int Arg(string name, int fallback) => SampleArguments.PositiveInt(args, name, fallback);
int trainRows, testRows, epochs;
try
{
    (trainRows, testRows, epochs) = (Arg("--train", 10_000), Arg("--test", 2_000), Arg("--epochs", 1));
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"{e.Message}\nusage: NniMigration [--train ROWS] [--test ROWS] [--epochs N]");
    return 2;
}

var ml = new MLContext(seed: 0);
var (train, _, _) = FashionData.Load(ml, train: true, trainRows);
var (test, _, _) = FashionData.Load(ml, train: false, testRows);
var shape = new long[] { 1, 28, 28 };
double Accuracy(ITransformer model)
{
    var scores = ml.Data.CreateEnumerable<ScoreRow>(model.Transform(test), false).Select(r => Array.IndexOf(r.Score, r.Score.Max()));
    var labels = ml.Data.CreateEnumerable<FashionRow>(test, false).Select(r => (int)r.Label);
    return scores.Zip(labels).Average(p => p.First == p.Second ? 1.0 : 0.0);
}

// ---------------------------------------------------------------------------------------------------------------
// QAT_Quantizer, examples/model_compress/quantization/QAT_torch_quantizer.py:
//   set_quant_scheme_dtype('weight', 'per_channel_symmetric', 'int'); input and output 'per_tensor_symmetric', 'int'
//   config_list = [{'quant_types': ['weight', 'input'], 'quant_bits': {'weight': 8, 'input': 8}, 'op_names': ['conv1', 'conv2']},
//                  {'quant_types': ['output'], 'quant_bits': {'output': 8}, 'op_names': ['relu1', 'relu2']},
//                  {'quant_types': ['output', 'weight', 'input'], 'quant_bits': {...: 8}, 'op_names': ['fc1', 'fc2']}]
//   QAT_Quantizer(model, config_list, optimizer, dummy_input)  — SGD lr 0.01, momentum 0.5
// NNI's global set_quant_scheme_dtype becomes an explicit QuantDefaults object; dummy_input is not needed.
var qat = ml.Quantization().Qat(new QatOptions
{
    ModelFactory = NniModels.NaiveModel, InputShape = shape, Epochs = epochs, LearningRate = 0.01, Momentum = 0.5,
    Defaults = new QuantDefaults
    {
        Weight = (QuantScheme.PerChannelSymmetric, QuantDtype.Int),
        Input = (QuantScheme.PerTensorSymmetric, QuantDtype.Int),
        Output = (QuantScheme.PerTensorSymmetric, QuantDtype.Int),
    },
    Config =
    {
        new QuantConfig { QuantTypes = { QuantType.Weight, QuantType.Input }, QuantBitsByType = { [QuantType.Weight] = 8, [QuantType.Input] = 8 }, OpNames = { "conv1", "conv2" } },
        new QuantConfig { QuantTypes = { QuantType.Output }, QuantBitsByType = { [QuantType.Output] = 8 }, OpNames = { "relu1", "relu2" } },
        new QuantConfig { QuantTypes = { QuantType.Output, QuantType.Weight, QuantType.Input }, QuantBits = 8, OpNames = { "fc1", "fc2" } },
    },
});
using (var model = qat.Fit(train)) Console.WriteLine($"QAT_Quantizer (NaiveModel, int8 symmetric): {Accuracy(model):P2}");

// The same config_list as NNI's JSON, read with NniConfigList.Parse (unknown keys and bad values fail by index and key).
var fromJson = NniConfigList.Parse("""
    [{"quant_types": ["weight", "input"], "quant_bits": {"weight": 8, "input": 8}, "op_names": ["conv1", "conv2"]},
     {"quant_types": ["output"], "quant_bits": {"output": 8}, "op_names": ["relu1", "relu2"]},
     {"quant_types": ["output", "weight", "input"], "quant_bits": 8, "op_names": ["fc1", "fc2"]}]
    """);
Console.WriteLine($"  the JSON config_list parses to {fromJson.Count} sub-configs");

// ---------------------------------------------------------------------------------------------------------------
// LsqQuantizer, examples/model_compress/quantization/LSQ_torch_quantizer.py:
//   config_list = [{'quant_types': ['weight', 'input'], 'quant_bits': {'weight': 8, 'input': 8}, 'op_names': ['conv1', 'conv2']},
//                  {'quant_types': ['output'], 'quant_bits': {'output': 8}, 'op_names': ['relu1', 'relu2', 'max_pool2']}]
//   LsqQuantizer(model, config_list, optimizer) — SGD lr 0.01, momentum 0.5.
// Unlike NNI v2.5+, the conv weights train too (NNI freezes them without BN folding).
var lsq = ml.Quantization().Lsq(new LsqOptions
{
    ModelFactory = NniModels.NaiveModel, InputShape = shape, Epochs = epochs, LearningRate = 0.01, Momentum = 0.5,
    Config =
    {
        new QuantConfig { QuantTypes = { QuantType.Weight, QuantType.Input }, QuantBits = 8, OpNames = { "conv1", "conv2" } },
        new QuantConfig { QuantTypes = { QuantType.Output }, QuantBits = 8, OpNames = { "relu1", "relu2", "max_pool2" } },
    },
});
using (var model = lsq.Fit(train)) Console.WriteLine($"LsqQuantizer (NaiveModel, 8 bit): {Accuracy(model):P2}");

// ---------------------------------------------------------------------------------------------------------------
// ObserverQuantizer, examples/model_compress/quantization/observer_quantizer.py: train float first, then calibrate.
//   config_list = [{'quant_types': ['weight', 'input'], 'quant_bits': {'weight': 8, 'input': 8}, 'op_names': ['conv1', 'conv2']},
//                  {'quant_types': ['output'], 'quant_bits': {'output': 8}, 'op_names': ['relu1', 'relu2', 'max_pool2']}]
//   quantizer = ObserverQuantizer(model.eval(), config_list); run calibration batches; quantizer.compress()
var floatRun = QuantizationRunner.Run(ml, new FloatTrainingOptions
{
    ModelFactory = NniModels.NaiveModel, InputShape = shape, Epochs = epochs, LearningRate = 0.01, Momentum = 0.5,
}, train);
var observer = ml.Quantization().Observer(new ObserverOptions
{
    Model = floatRun.Network.Model, InputShape = shape, CalibrationRows = 1000, Calibration = CalibrationMethod.Histogram,
    Config =
    {
        new QuantConfig { QuantTypes = { QuantType.Weight, QuantType.Input }, QuantBits = 8, OpNames = { "conv1", "conv2" } },
        new QuantConfig { QuantTypes = { QuantType.Output }, QuantBits = 8, OpNames = { "relu1", "relu2", "max_pool2" } },
    },
});
using (var model = observer.Fit(train)) Console.WriteLine($"ObserverQuantizer (NaiveModel, histogram calibration): {Accuracy(model):P2}");

// ---------------------------------------------------------------------------------------------------------------
// BNNQuantizer, examples/model_compress/quantization/BNN_quantizer_cifar10.py (VGG-style net, here for 28×28):
//   config_list = [{'quant_types': ['weight'], 'quant_bits': 1, 'op_names': [inner convs and linears]},
//                  {'quant_types': ['output'], 'quant_bits': 1, 'op_names': [Hardtanh layers after the first]}]
//   BNNQuantizer(model, config_list, optimizer) — Adam; first conv and last linear stay float.
// The latent-weight clip NNI's example attempts (a no-op there) is done here after every optimizer step.
var bnn = ml.Quantization().Bnn(new BnnOptions
{
    ModelFactory = NniModels.BnnVgg, InputShape = shape, Epochs = epochs, LearningRate = 0.001, Optimizer = QuantOptimizer.Adam,
    Config =
    {
        new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 1, OpNames = { "features.3", "features.7", "classifier.1" } },
        new QuantConfig { QuantTypes = { QuantType.Output }, QuantBits = 1, OpNames = { "features.6", "features.10" } },
    },
});
using (var model = bnn.Fit(train)) Console.WriteLine($"BNNQuantizer (VGG-style, binary inner layers): {Accuracy(model):P2}");
return 0;

internal sealed class ScoreRow
{
    public float[] Score { get; set; } = Array.Empty<float>();
}
