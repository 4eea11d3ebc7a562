using MLNetQuant.Core;
using static TorchSharp.torch;

namespace MLNetQuant.Configuration;

/// <summary>Validates a config list against an algorithm's rules and matches it to a model's modules, NNI-style:
/// a sub-config matches a module when its op_types (if any) contain the module's type and its op_names (if any) contain
/// its dotted name; the last match wins; an excluding winner leaves the module float.</summary>
public static class QuantConfigResolver
{
    /// <summary>Checks every sub-config without a model: keys the algorithm cannot use, unknown op types, quant types
    /// and bit widths outside the algorithm's range.</summary>
    /// <exception cref="QuantConfigException">The first problem, naming the sub-config index and key.</exception>
    public static void Validate(IReadOnlyList<QuantConfig> configs, QuantAlgorithmRules rules)
    {
        ArgumentNullException.ThrowIfNull(configs);
        ArgumentNullException.ThrowIfNull(rules);
        if (configs.Count == 0) throw new ArgumentException("The config list is empty: nothing would be quantized.", nameof(configs));
        for (var i = 0; i < configs.Count; i++) ValidateOne(i, configs[i] ?? throw new QuantConfigException(i, "config", "is null"), rules);
    }

    /// <summary>Validates the configs and decides, for every module of <paramref name="model"/>, whether and how it is
    /// quantized. Sub-configs (and op_names) that match no module are reported through <paramref name="warn"/>.</summary>
    /// <exception cref="QuantConfigException">An invalid sub-config, or one that asks a module for a tensor it lacks.</exception>
    /// <exception cref="NotSupportedException">A module MLNetQuant cannot quantize or export; the message names it and
    /// lists the supported layers.</exception>
    public static IReadOnlyList<LayerQuantPlan> Resolve(nn.Module model, IReadOnlyList<QuantConfig> configs,
        QuantAlgorithmRules rules, QuantDefaults? defaults = null, Action<string>? warn = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        Validate(configs, rules);
        defaults ??= QuantDefaults.OnnxRuntimeFriendly;

        var modules = new List<(string Name, string OpType, nn.Module Module)>();
        foreach (var (name, module) in ModuleTree.NamedModules(model))
        {
            var opType = SupportedLayers.OpTypeOf(module) ?? throw new NotSupportedException(
                $"Module '{name}' ({module.GetType().Name}) is not supported. Supported layers: Sequential, ResidualBlock, " +
                $"{string.Join(", ", SupportedLayers.OpTypes)}.");
            modules.Add((name, opType, module));
        }

        var matched = new bool[configs.Count];
        var plans = new List<LayerQuantPlan>();
        foreach (var (name, opType, module) in modules)
        {
            if (SupportedLayers.Containers.Contains(opType)) continue;
            var hasWeight = SupportedLayers.HasWeight(module);
            var winner = -1;
            for (var i = 0; i < configs.Count; i++)
            {
                if (!Matches(configs[i], name, opType, hasWeight)) continue;
                matched[i] = true;
                winner = i;
            }
            if (winner < 0 || configs[winner].Exclude) continue;
            plans.Add(Plan(winner, configs[winner], name, opType, hasWeight, SupportedLayers.WeightChannelAxis(module), rules, defaults));
        }

        // A list that selects nothing at all would hand back a float model dressed as a quantized one (a config written
        // for TorchSharp layer names, Conv2d/Linear, applied to an imported graph, whose op types are Conv/Gemm).
        if (!matched.Any(m => m))
            throw new QuantConfigException(0, "op_types", "no sub-config matches any module of the model, so nothing would be quantized; its op types are " +
                string.Join(", ", modules.Select(m => m.OpType).Where(t => !SupportedLayers.Containers.Contains(t)).Distinct()) + ".");
        var names = modules.Select(m => m.Name).ToHashSet(StringComparer.Ordinal);
        for (var i = 0; i < configs.Count; i++)
        {
            if (!matched[i])
                warn?.Invoke($"config[{i}] matches no module of the model (op_types: [{string.Join(", ", configs[i].OpTypes)}], " +
                    $"op_names: [{string.Join(", ", configs[i].OpNames)}]).");
            foreach (var missing in configs[i].OpNames.Where(n => !names.Contains(n)))
                warn?.Invoke($"config[{i}].op_names: the model has no module named '{missing}'.");
        }
        return plans;
    }

    // default selects the layers with a weight (for an imported graph: the Conv/Gemm/MatMul nodes with a constant one).
    private static bool Matches(QuantConfig config, string name, string opType, bool hasWeight)
    {
        var typeMatches = config.OpTypes.Count == 0 || config.OpTypes.Contains(opType) || (config.OpTypes.Contains("default") && hasWeight);
        var nameMatches = config.OpNames.Count == 0 || config.OpNames.Contains(name);
        return typeMatches && nameMatches;
    }

    private static LayerQuantPlan Plan(int index, QuantConfig config, string name, string opType, bool hasWeight, int weightAxis,
        QuantAlgorithmRules rules, QuantDefaults defaults)
    {
        var specs = new Dictionary<QuantType, QuantSpec>();
        foreach (var type in config.QuantTypes)
        {
            if (type == QuantType.Weight && !hasWeight)
                throw new QuantConfigException(index, "quant_types",
                    $"module '{name}' ({opType}) has no weight to quantize; select Conv1d, Conv2d or Linear modules (in an imported " +
                    "graph: Conv, ConvTranspose, Gemm or MatMul nodes with a constant weight) for 'weight'.");
            var (defaultScheme, defaultDtype) = defaults.For(type);
            var scheme = config.QuantSchemeByType.TryGetValue(type, out var s) ? s : config.QuantScheme ?? defaultScheme;
            var dtype = config.QuantDtypeByType.TryGetValue(type, out var d) ? d : config.QuantDtype ?? defaultDtype;
            try
            {
                specs[type] = new QuantSpec(dtype, config.BitsFor(type)!.Value, scheme, QuantRangeKind.Full,
                    channelAxis: type == QuantType.Weight ? weightAxis : 1);
            }
            catch (ArgumentException e)
            {
                throw new QuantConfigException(index, "quant_scheme", $"{type} of '{name}': {e.Message}");
            }
        }
        return new LayerQuantPlan(name, opType, index, specs, config.QuantStartStep);
    }

    private static void ValidateOne(int i, QuantConfig c, QuantAlgorithmRules rules)
    {
        if (c.OpTypes.Count == 0 && c.OpNames.Count == 0)
            throw new QuantConfigException(i, "op_types", "select modules with op_types or op_names (or both).");
        foreach (var opType in c.OpTypes)
            if (opType != "default" && !SupportedLayers.OpTypes.Contains(opType))
                throw new QuantConfigException(i, "op_types",
                    $"unknown op type '{opType}'; use default or one of {string.Join(", ", SupportedLayers.OpTypes)}.");
        if (c.QuantStartStep < 0)
            throw new QuantConfigException(i, "quant_start_step", $"must be >= 0, got {c.QuantStartStep}.");
        if (c.QuantStartStep > 0 && !rules.AllowsQuantStartStep)
            throw new QuantConfigException(i, "quant_start_step", $"{rules.Algorithm} has no quant start step (QAT only).");
        if (!rules.AllowsSchemeAndDtype && (c.QuantScheme is not null || c.QuantSchemeByType.Count > 0))
            throw new QuantConfigException(i, "quant_scheme", $"{rules.Algorithm} fixes its own grid; quant_scheme cannot be set.");
        if (!rules.AllowsSchemeAndDtype && (c.QuantDtype is not null || c.QuantDtypeByType.Count > 0))
            throw new QuantConfigException(i, "quant_dtype", $"{rules.Algorithm} fixes its own grid; quant_dtype cannot be set.");
        if (c.Exclude) return;

        if (c.QuantTypes.Count == 0)
            throw new QuantConfigException(i, "quant_types", "list at least one of weight, input, output (or set exclude).");
        if (c.QuantTypes.Distinct().Count() != c.QuantTypes.Count)
            throw new QuantConfigException(i, "quant_types", "lists a quant type twice.");
        foreach (var type in c.QuantTypes)
        {
            if (!rules.QuantTypes.Contains(type))
                throw new QuantConfigException(i, "quant_types",
                    $"{rules.Algorithm} cannot quantize {type}; it supports {string.Join(", ", rules.QuantTypes)}.");
            var bits = c.BitsFor(type) ?? throw new QuantConfigException(i, "quant_bits", $"no bit width for {type}.");
            if (bits < rules.MinBits || bits > rules.MaxBits)
                throw new QuantConfigException(i, "quant_bits",
                    $"{bits} bits for {type} is outside what {rules.Algorithm} allows ({rules.MinBits}–{rules.MaxBits}).");
        }
        ThrowIfNamesUnlistedType(i, "quant_bits", c.QuantBitsByType.Keys, c.QuantTypes);
        ThrowIfNamesUnlistedType(i, "quant_scheme", c.QuantSchemeByType.Keys, c.QuantTypes);
        ThrowIfNamesUnlistedType(i, "quant_dtype", c.QuantDtypeByType.Keys, c.QuantTypes);
    }

    private static void ThrowIfNamesUnlistedType(int i, string key, IEnumerable<QuantType> named, IList<QuantType> listed)
    {
        foreach (var type in named)
            if (!listed.Contains(type))
                throw new QuantConfigException(i, key, $"names {type}, which quant_types does not list.");
    }
}
