using MLNetQuant.Core;
using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Runtime;
using MLNetQuant.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNetQuant.Training;

/// <summary>The training, calibration and evaluation loops over an IDataView: batches streamed through a cursor,
/// reshuffled every epoch with a seed from the MLContext, progress to the log channel and the IProgress callback,
/// cancellation between batches, and a loss that stops being finite ends the run with an exception instead of a
/// NaN model.</summary>
internal sealed class NetworkTrainer
{
    private readonly MLContext _ml;
    private readonly IChannel _log;
    private readonly QuantizationOptions _options;
    private readonly DataViewBatches _batches;
    private readonly Device _device;
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    public NetworkTrainer(MLContext ml, IChannel log, QuantizationOptions options, DataViewBatches batches, Device device)
    {
        _ml = ml;
        _log = log;
        _options = options;
        _batches = batches;
        _device = device;
    }

    public List<EpochSummary> Train(QuantizedNetwork network, IDataView data, TrainingQuantizationOptions options, int seed)
    {
        var named = NamedParameters(network);
        var parameters = named.Select(p => p.Parameter).ToList();
        using optim.Optimizer optimizer = options.Optimizer == QuantOptimizer.Adam
            ? optim.Adam(parameters, options.LearningRate, weight_decay: options.WeightDecay)
            : optim.SGD(parameters, options.LearningRate, options.Momentum, weight_decay: options.WeightDecay);
        var schedule = options.LearningRateMilestones.Count == 0 ? null
            : optim.lr_scheduler.MultiStepLR(optimizer, options.LearningRateMilestones.ToArray(), options.LearningRateDecay);
        var history = new List<EpochSummary>();
        for (var epoch = 1; epoch <= options.Epochs; epoch++)
        {
            var shuffled = _ml.Data.ShuffleRows(data, seed + epoch, options.ShufflePoolSize, shuffleSource: true);
            network.train();
            var epochClock = Stopwatch.StartNew();
            using var lossSum = zeros(1, dtype: ScalarType.Float64, device: _device);
            using var correct = zeros(1, dtype: ScalarType.Int64, device: _device);
            long rows = 0, stepsInEpoch = 0;
            foreach (var batch in _batches.Read(shuffled, options.BatchSize, _device, options.CancellationToken))
            {
                using (batch)
                using (var scope = NewDisposeScope())
                {
                    optimizer.zero_grad();
                    var output = network.Forward(batch.Inputs);
                    var loss = Loss(output, batch.Labels);
                    loss.backward();
                    // A non-finite gradient is caught at the step it appears, before the optimizer spreads it into the
                    // weights, and named: one fused check per step (a single device sync).
                    if (!AllFinite(parameters)) ThrowDiverged(named, loss, epoch, network.Step);
                    optimizer.step();
                    network.AfterOptimizerStep();
                    using (no_grad()) Accumulate(loss.detach(), output, batch, lossSum, correct);
                }
                rows += batch.Count;
                stepsInEpoch++;
                if (stepsInEpoch % _options.LogEverySteps == 0)
                    Report("train", epoch, options.Epochs, network.Step - 1, rows, lossSum, correct, epochClock, false);
            }
            if (rows == 0) throw new InvalidOperationException("The training data has no rows.");
            var seconds = epochClock.Elapsed.TotalSeconds;
            var (trainLoss, trainAccuracy) = Report("train", epoch, options.Epochs, network.Step - 1, rows, lossSum, correct,
                epochClock, true);
            EvaluationMetrics? validation = null;
            if (options.ValidationData is not null)
            {
                validation = Evaluate(network, options.ValidationData, options.BatchSize);
                _log.Info(MessageSensitivity.None,
                    $"validate epoch {epoch}/{options.Epochs}: loss {validation.Loss:F4}, accuracy {validation.Accuracy:P2} on {validation.Rows} rows");
                options.Progress?.Report(new QuantizationProgress("validate", epoch, options.Epochs, network.Step - 1,
                    validation.Rows, validation.Loss, validation.Accuracy, double.NaN, _clock.Elapsed, true));
            }
            history.Add(new EpochSummary(epoch, trainLoss, trainAccuracy, seconds, validation));
            if (schedule is not null)
            {
                schedule.step();
                if (options.LearningRateMilestones.Contains(epoch))
                    _log.Info(MessageSensitivity.None, $"learning rate {schedule.get_last_lr().First():G4} from epoch {epoch + 1}");
            }
        }
        network.eval();
        return history;
    }

    // The trained tensors with the layer each belongs to, in the module's own order (so "first" means nearest the input).
    private static List<(string Layer, string Name, Parameter Parameter)> NamedParameters(QuantizedNetwork network)
    {
        var list = network.Model.named_parameters()
            .Select(p => (Layer: LayerOf(p.name), Name: p.name, Parameter: p.parameter)).ToList();
        foreach (var layer in network.Layers)
            foreach (var (type, quantizer) in layer.Quantizers)
                foreach (var parameter in quantizer.LearnableParameters)
                    list.Add((layer.Name, $"{layer.Name} ({type} quantizer step)", parameter));
        return list;
    }

    private static string LayerOf(string parameterName)
    {
        var dot = parameterName.LastIndexOf('.');
        return dot < 0 ? parameterName : parameterName[..dot];
    }

    private static bool AllFinite(List<Parameter> parameters)
    {
        using var scope = NewDisposeScope();
        var checks = parameters.Where(p => p.grad is not null).Select(p => p.grad!.isfinite().all()).ToArray();
        return checks.Length == 0 || stack(checks).all().item<bool>();
    }

    private static void ThrowDiverged(List<(string Layer, string Name, Parameter Parameter)> named, Tensor loss, int epoch, long step)
    {
        using var scope = NewDisposeScope();
        var lossValue = loss.detach().to_type(ScalarType.Float64).item<double>();
        var broken = named.Where(p => p.Parameter.grad is { } g && !g.isfinite().all().item<bool>()).ToList();
        var (layer, name, parameter) = broken[0];
        var layers = broken.Select(p => p.Layer).Distinct().ToList();
        var grad = parameter.grad!;
        var bad = grad.isfinite().logical_not().sum().item<long>();
        var nan = grad.isnan().sum().item<long>();
        throw new InvalidOperationException(
            $"Training diverged at epoch {epoch}, step {step}: the gradient of '{name}' (layer '{layer}') is not finite " +
            $"({bad} of {grad.numel()} values: {nan} NaN, {bad - nan} infinite); the loss was {lossValue:G6}. " +
            (layers.Count > 1 ? $"Layers with non-finite gradients, input first: {string.Join(", ", layers.Select(l => $"'{l}'"))}. " : "") +
            (double.IsFinite(lossValue)
                ? "A finite loss with a non-finite gradient points at the engine (see docs/troubleshooting.md, TorchEngine.Protect) " +
                  "or an overflowing layer; "
                : "") +
            "lower the learning rate, exclude that layer from quantization, or raise its bit width. The weights were not " +
            "updated by this step.");
    }

    public void Calibrate(QuantizedNetwork network, IDataView data, long maxRows)
    {
        network.eval();
        network.Calibrating = true;
        var clock = Stopwatch.StartNew();
        long rows = 0, batches = 0;
        using (no_grad())
        {
            foreach (var batch in _batches.Read(data, _options.BatchSize, _device, _options.CancellationToken, maxRows))
            {
                using (batch)
                using (NewDisposeScope())
                    network.Forward(batch.Inputs);
                rows += batch.Count;
                batches++;
                if (batches % _options.LogEverySteps == 0) CalibrationProgress(batches, rows, clock, false);
            }
        }
        if (rows == 0) throw new InvalidOperationException("The calibration data has no rows.");
        network.FinishCalibration();
        CalibrationProgress(batches, rows, clock, true);
    }

    public EvaluationMetrics Evaluate(QuantizedNetwork network, IDataView data, int batchSize)
    {
        var wasTraining = network.training;
        network.eval();
        using var lossSum = zeros(1, dtype: ScalarType.Float64, device: _device);
        using var correct = zeros(1, dtype: ScalarType.Int64, device: _device);
        long rows = 0;
        using (no_grad())
        {
            foreach (var batch in _batches.Read(data, batchSize, _device, _options.CancellationToken))
            {
                using (batch)
                using (NewDisposeScope())
                {
                    var output = network.Forward(batch.Inputs);
                    Accumulate(Loss(output, batch.Labels), output, batch, lossSum, correct);
                }
                rows += batch.Count;
            }
        }
        if (wasTraining) network.train();
        if (rows == 0) return new EvaluationMetrics(double.NaN, double.NaN, 0);
        var accuracy = _batches.IsClassification ? (double)correct.item<long>() / rows : double.NaN;
        return new EvaluationMetrics(lossSum.item<double>() / rows, accuracy, rows);
    }

    private Tensor Loss(Tensor output, Tensor labels) => _batches.IsClassification
        ? nn.functional.cross_entropy(output, labels)
        : nn.functional.mse_loss(output.reshape(-1), labels);

    // Sums on the device (read only at report points): batch loss × rows, and correct predictions for classifiers.
    private void Accumulate(Tensor loss, Tensor output, TensorBatch batch, Tensor lossSum, Tensor correct)
    {
        lossSum.add_(loss.to_type(ScalarType.Float64).mul(CachedScalars.OfInt(batch.Count)), CachedScalars.One);
        if (_batches.IsClassification) correct.add_(output.argmax(1).eq(batch.Labels).sum(), CachedScalars.OfInt(1));
    }

    private (double Loss, double Accuracy) Report(string phase, int epoch, int epochs, long step, long rows, Tensor lossSum,
        Tensor correct, Stopwatch epochClock, bool endOfEpoch)
    {
        var loss = lossSum.item<double>() / rows;
        if (!double.IsFinite(loss))
            throw new InvalidOperationException(
                $"Training diverged: the mean loss is {loss} at epoch {epoch}, step {step}. Lower the learning rate, " +
                "exclude the layer that breaks (see the per-layer report), or raise the bit width.");
        var accuracy = _batches.IsClassification ? (double)correct.item<long>() / rows : double.NaN;
        var progress = new QuantizationProgress(phase, epoch, epochs, step, rows, loss, accuracy,
            rows / Math.Max(epochClock.Elapsed.TotalSeconds, 1e-9), _clock.Elapsed, endOfEpoch);
        _log.Info(MessageSensitivity.None, progress.ToString());
        _options.Progress?.Report(progress);
        return (loss, accuracy);
    }

    private void CalibrationProgress(long batches, long rows, Stopwatch clock, bool end)
    {
        var progress = new QuantizationProgress("calibrate", 1, 1, batches, rows, double.NaN, double.NaN,
            rows / Math.Max(clock.Elapsed.TotalSeconds, 1e-9), _clock.Elapsed, end);
        _log.Info(MessageSensitivity.None, progress.ToString());
        _options.Progress?.Report(progress);
    }
}
