"""EPDI: electrostatic-potential-image transfer learning for Li on doped TMD monolayers.

Chen, Kang, Wang, Huang, Yao, J. Zhejiang Univ. Sci. A 26, 1010 (2025). The paper's DFT data are not
public, so this package computes a smaller substitute data set with physics codes that run offline
(CHGNet energies and climbing-image NEB through ASE; GPAW LCAO electrostatic-potential maps) and
reproduces the learning method on it.

Modules, bottom up: ``structures`` (hosts, doped slabs, Li sites, paths), ``energies`` (CHGNet),
``esp`` (GPAW maps and image crops), ``generate`` (the resumable generation stage), ``dataset``
(the committed data set as images), ``learn`` (CNNs, transfer sources, experiments), ``report``.
"""
