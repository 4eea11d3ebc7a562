using TorchSharp;
using Microsoft.ML;
using Microsoft.ML.Runtime;
using MLNetQuant.Configuration;
using MLNetQuant.Core;
using MLNetQuant.Export;
using MLNetQuant.Modeling;
using static TorchSharp.torch;

namespace MLNetQuant.Training;

/// <summary>Runs an algorithm end to end: validates the options, the data schema and the config (before any
/// training), builds the model on the device, wraps it in a <see cref="QuantizedNetwork"/>, then trains (QAT, LSQ,
/// DoReFa, BNN, float), calibrates (Observer) or just rounds (Naive). Seeds TorchSharp and the shuffles from the
/// MLContext, so a fixed MLContext seed on the CPU gives identical weights and scales run after run.</summary>
public static class QuantizationRunner
{
    private const string LogName = "MLNetQuant";

    /// <summary>Quantizes the model of <paramref name="options"/> with the algorithm its type names.</summary>
    /// <param name="ml">Supplies the seed, the log channel and the data operations.</param>
    /// <param name="options">Which algorithm, model, config and training settings.</param>
    /// <param name="data">Training or calibration data (may be null for Naive).</param>
    /// <exception cref="ArgumentException">An invalid option or a data column that is missing or of the wrong type.</exception>
    /// <exception cref="QuantConfigException">An invalid sub-config, named by index and key.</exception>
    /// <exception cref="NotSupportedException">A module MLNetQuant cannot quantize, named.</exception>
    /// <exception cref="OperationCanceledException">The options' cancellation token fired.</exception>
    public static QuantizationRun Run(MLContext ml, QuantizationOptions options, IDataView? data) =>
        Run(ml, options, data, seed: null);

    /// <summary>A seed drawn from <paramref name="ml"/>'s random source, as <see cref="Run(MLContext, QuantizationOptions, IDataView?)"/>
    /// draws one per call; an estimator draws it once so that each of its fits is the same.</summary>
    internal static int DrawSeed(MLContext ml) => ((IHostEnvironment)ml).Register(LogName).Rand.Next();

    /// <param name="ml">Supplies the seed, the log channel and the data operations.</param>
    /// <param name="options">Which algorithm, model, config and training settings.</param>
    /// <param name="data">Training or calibration data (may be null for Naive).</param>
    /// <param name="seed">The run's seed; null draws one from <paramref name="ml"/>.</param>
    /// <param name="exportable">Refuse, before training, a config the QDQ exporter cannot write (the estimators export).</param>
    internal static QuantizationRun Run(MLContext ml, QuantizationOptions options, IDataView? data, int? seed, bool exportable = false)
    {
        ArgumentNullException.ThrowIfNull(ml);
        ArgumentNullException.ThrowIfNull(options);
        var protection = TorchEngine.Protect();
        options.Validate();
        if (options.NeedsData && data is null)
            throw new ArgumentNullException(nameof(data), $"{options.GetType().Name} needs training or calibration data.");

        var host = ((IHostEnvironment)ml).Register(LogName);
        using var log = host.Start(LogName);
        if (protection == TorchEngineProtection.Unavailable)
            log.Warning(MessageSensitivity.None, $"Could not set {TorchEngine.IsaCapVariable}={TorchEngine.SafeIsa} in this process: CPU " +
                "convolution gradients may be non-finite or differ between runs on AVX-512 machines. Set it in the environment " +
                "before starting the process (docs/troubleshooting.md).");
        var runSeed = seed ?? host.Rand.Next();
        var batches = data is null ? null : DataViewBatches.For(data.Schema, options, "training data");
        var validation = options as TrainingQuantizationOptions;
        if (validation?.ValidationData is { } validationData) DataViewBatches.For(validationData.Schema, options, "validation data");

        var algorithm = options.CreateAlgorithm();
        var userConfig = options.UsesConfig && options.Config.Count > 0;
        if (userConfig) QuantConfigResolver.Validate(options.Config.ToList(), algorithm.Rules);
        var device = options.Device.Resolve();

        random.manual_seed(runSeed);
        var model = options.CreateModel();
        var inputs = batches?.Inputs ?? ModelInputs.For(options, null); // with no data (Naive): bound from the model and InputShapes
        var configs = userConfig ? options.Config.ToList() : algorithm.DefaultConfigFor(model).ToList();
        var plans = QuantConfigResolver.Resolve(model, configs, algorithm.Rules, options.Defaults,
            warning => log.Warning(MessageSensitivity.None, warning));
        if (exportable) ExportPreflight.ThrowIfNotExportable(plans, algorithm);
        model.to(device);
        var (outputs, ranks) = Probe(model, inputs, device);
        ThrowIfNoChannelAxis(plans, ranks);
        var network = new QuantizedNetwork(model, plans, algorithm, device);
        log.Info(MessageSensitivity.None,
            $"{algorithm.Rules.Algorithm}: {plans.Count} quantized layer(s) on {device.type}, {outputs} output(s).");

        var trainer = batches is null ? null : new NetworkTrainer(ml, log, options, batches, device);
        if (batches is not null)
        {
            if (batches.IsClassification)
            {
                if (batches.KeyCount is long keys && keys != outputs)
                    throw new ArgumentException(
                        $"Label column '{options.LabelColumnName}' has {keys} classes but the model has {outputs} outputs.");
                batches.Classes = outputs;
            }
            else if (outputs != 1)
                throw new ArgumentException(
                    $"Label column '{options.LabelColumnName}' is Single (regression), so the model needs 1 output; it has {outputs}.");
        }

        IReadOnlyList<EpochSummary> history = Array.Empty<EpochSummary>();
        switch (options)
        {
            case TrainingQuantizationOptions training:
                history = trainer!.Train(network, data!, training, runSeed);
                break;
            case ObserverOptions observer:
                trainer!.Calibrate(network, data!, observer.CalibrationRows);
                break;
        }
        network.eval();
        using (no_grad())
        using (NewDisposeScope())
            network.Forward(inputs.Example(device));
        return new QuantizationRun(network, device, history, batches?.IsClassification ?? true, outputs) { Inputs = inputs };
    }

    /// <summary>Loss and accuracy of a quantized (or float) network on <paramref name="data"/>, read with the columns
    /// and input shape of <paramref name="options"/>.</summary>
    /// <exception cref="ArgumentException">A missing column or one of the wrong type or size.</exception>
    public static EvaluationMetrics Evaluate(MLContext ml, QuantizationRun run, IDataView data, QuantizationOptions options)
    {
        ArgumentNullException.ThrowIfNull(ml);
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        var batches = DataViewBatches.For(data.Schema, options, "evaluation data");
        if (batches.IsClassification) batches.Classes = run.Outputs;
        var host = ((IHostEnvironment)ml).Register(LogName);
        using var log = host.Start(LogName);
        return new NetworkTrainer(ml, log, options, batches, run.Device).Evaluate(run.Network, data, options.BatchSize);
    }

    /// <summary>The output size of <paramref name="model"/> for one example of <paramref name="inputs"/>, probed on the
    /// device its parameters are on.</summary>
    internal static long OutputSize(nn.Module<Tensor, Tensor> model, ModelInputs inputs) =>
        Probe(model, inputs, model.parameters().FirstOrDefault()?.device ?? CPU).Outputs;

    // One float forward of a zero example (NNI records shapes with a dummy input too): the output size, and the rank of
    // every leaf's input and output, so bad shapes fail before training rather than inside the first step.
    private static (long Outputs, Dictionary<string, (long Input, long Output)> Ranks) Probe(nn.Module<Tensor, Tensor> model,
        ModelInputs inputs, Device device)
    {
        var ranks = new Dictionary<string, (long Input, long Output)>(StringComparer.Ordinal);
        var wasTraining = model.training;
        model.eval();
        try
        {
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            var output = ModuleWalker.Run(model, inputs.Example(device), visit: (name, x, y) => ranks[name] = (x.dim(), y.dim()));
            if (output.dim() > 2 || output.shape[0] != 1)
                throw new ArgumentException(
                    $"The model maps one example of {inputs.Describe()} to [{string.Join(", ", output.shape)}]; it must " +
                    "return [batch, outputs] (or [batch]).");
            return (output.dim() == 2 ? output.shape[1] : 1, ranks);
        }
        catch (Exception e) when (e is not ArgumentException)
        {
            throw new ArgumentException($"The model cannot run one example of {inputs.Describe()}: {e.Message}", e);
        }
        finally
        {
            if (wasTraining) model.train();
        }
    }

    // Per-channel grids need the channel axis on the tensor they quantize.
    private static void ThrowIfNoChannelAxis(IReadOnlyList<LayerQuantPlan> plans, Dictionary<string, (long Input, long Output)> ranks)
    {
        foreach (var plan in plans)
            foreach (var (type, spec) in plan.Specs)
            {
                if (!spec.Scheme.IsPerChannel() || type == QuantType.Weight || !ranks.TryGetValue(plan.Name, out var rank)) continue;
                var tensorRank = type == QuantType.Input ? rank.Input : rank.Output;
                if (spec.ChannelAxis >= tensorRank)
                    throw new QuantConfigException(plan.ConfigIndex, "quant_scheme",
                        $"the {type} of '{plan.Name}' has rank {tensorRank}, so no channel axis {spec.ChannelAxis}; use a per-tensor scheme.");
            }
    }

}
