using static TorchSharp.torch;

namespace MLNetQuant.Configuration;

/// <summary>Walks a module tree the way PyTorch's named_modules() does: depth-first, parents before children, with
/// dotted names. (TorchSharp's own named_modules() lists all children before any grandchild, which would put
/// <c>fc</c> before <c>features.0</c>.)</summary>
public static class ModuleTree
{
    /// <summary>Every descendant of <paramref name="root"/> (not the root itself) with its dotted name, in PyTorch's
    /// order.</summary>
    public static IEnumerable<(string Name, nn.Module Module)> NamedModules(nn.Module root)
    {
        ArgumentNullException.ThrowIfNull(root);
        foreach (var (name, child) in root.named_children())
        {
            yield return (name, child);
            foreach (var (innerName, inner) in NamedModules(child)) yield return ($"{name}.{innerName}", inner);
        }
    }
}
