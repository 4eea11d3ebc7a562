using TorchSharp;
using static TorchSharp.torch;

namespace MLNetQuant.Modeling;

/// <summary>A copy of a module's parameters and buffers (BatchNorm running statistics included), its device and its
/// training flag, put back by <see cref="Restore"/>. The estimators fine-tune the caller's module and restore it
/// afterwards — also when Fit throws — so the module given in the options is what it was before Fit, and fitting the
/// same estimator twice starts from the same weights. (TorchSharp has no generic module copy, so the network trains
/// the caller's instance and the snapshot undoes it.)</summary>
internal sealed class ModuleStateSnapshot : IDisposable
{
    private readonly nn.Module _module;
    private readonly Dictionary<string, Tensor> _state;
    private readonly Device _device;
    private readonly bool _training;

    private ModuleStateSnapshot(nn.Module module)
    {
        _module = module;
        _training = module.training;
        using var _ = no_grad();
        _state = module.state_dict().ToDictionary(p => p.Key, p => p.Value.detach().clone(), StringComparer.Ordinal);
        _device = _state.Values.FirstOrDefault()?.device ?? CPU;
    }

    /// <summary>Copies the current state of <paramref name="module"/>.</summary>
    public static ModuleStateSnapshot Capture(nn.Module module) => new(module);

    /// <summary>Puts the copied state back: values, device, training flag; gradients the run left are dropped.</summary>
    public void Restore()
    {
        _module.to(_device);
        using (no_grad())
            foreach (var (name, tensor) in _module.state_dict())
                tensor.copy_(_state[name]);
        foreach (var parameter in _module.parameters())
            parameter.grad = null;
        _module.train(_training);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var tensor in _state.Values) tensor.Dispose();
    }
}
