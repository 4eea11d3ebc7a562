namespace MLNetQuant.Configuration;

/// <summary>One sub-config of NNI's config_list, typed: which modules it selects (<see cref="OpTypes"/>,
/// <see cref="OpNames"/>), what it quantizes (<see cref="QuantTypes"/>) and how. When several sub-configs match a
/// module, the last one wins wholesale (keys are not merged), as in NNI.</summary>
public sealed class QuantConfig
{
    /// <summary>The tensors to quantize in each selected module (NNI's quant_types).</summary>
    public IList<QuantType> QuantTypes { get; init; } = new List<QuantType>();

    /// <summary>Bit width for every listed quant type (NNI's quant_bits as a number); see also
    /// <see cref="QuantBitsByType"/>.</summary>
    public int? QuantBits { get; init; }

    /// <summary>Bit width per quant type (NNI's quant_bits as a dict); overrides <see cref="QuantBits"/> for the types
    /// it names.</summary>
    public IDictionary<QuantType, int> QuantBitsByType { get; init; } = new Dictionary<QuantType, int>();

    /// <summary>PyTorch class names of the modules to select (Conv2d, Linear, ReLU, …), or <c>default</c> for the
    /// weighted layers (Conv1d, Conv2d, Linear).</summary>
    public IList<string> OpTypes { get; init; } = new List<string>();

    /// <summary>Dotted module names from named_modules() (e.g. <c>features.3</c>) to select.</summary>
    public IList<string> OpNames { get; init; } = new List<string>();

    /// <summary>When true, the modules this sub-config matches are not quantized. Unlike NNI v2, the value counts:
    /// false means an ordinary sub-config.</summary>
    public bool Exclude { get; init; }

    /// <summary>Optimizer steps before quantization starts (QAT only; NNI's quant_start_step).</summary>
    public int QuantStartStep { get; init; }

    /// <summary>Scheme for every listed quant type; null takes <see cref="QuantDefaults"/>.</summary>
    public QuantScheme? QuantScheme { get; init; }

    /// <summary>Scheme per quant type; overrides <see cref="QuantScheme"/> for the types it names.</summary>
    public IDictionary<QuantType, QuantScheme> QuantSchemeByType { get; init; } = new Dictionary<QuantType, QuantScheme>();

    /// <summary>Integer signedness for every listed quant type; null takes <see cref="QuantDefaults"/>.</summary>
    public QuantDtype? QuantDtype { get; init; }

    /// <summary>Signedness per quant type; overrides <see cref="QuantDtype"/> for the types it names.</summary>
    public IDictionary<QuantType, QuantDtype> QuantDtypeByType { get; init; } = new Dictionary<QuantType, QuantDtype>();

    /// <summary>The bit width configured for <paramref name="type"/>, or null when none is.</summary>
    public int? BitsFor(QuantType type) => QuantBitsByType.TryGetValue(type, out var bits) ? bits : QuantBits;
}
